"""An upload handler that drops a file the moment it passes the size limit, so an oversized
upload is never buffered whole, in memory or on disk, and refuses a body cut off mid-request."""

from typing import IO

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParserError


class Truncated(MultiPartParserError):
    """The body ended before its Content-Length: the connection dropped mid-upload."""

    def __init__(self, received: int, expected: int) -> None:
        super().__init__(f"The upload was cut off after {received:,} of {expected:,} bytes.")
        self.counts = (received, expected)  # for the message in the user's language


class SizeLimit(FileUploadHandler):
    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.limit = settings.MAX_UPLOAD_BYTES
        self.received = 0
        self.files = 0
        self.too_large: list[str] = []
        self.dropped: list[int] = []  # positions of the files dropped, to drop their paths too
        self.body_length = 0

    def handle_raw_input(
        self,
        input_data: IO[bytes],
        META: dict[str, str],  # noqa: N803 (Django's name)
        content_length: int,
        boundary: str,
        encoding: str | None = None,
    ) -> None:
        self.body_length = content_length

    def new_file(self, *args: object, **kwargs: object) -> None:
        super().new_file(*args, **kwargs)  # type: ignore[arg-type]
        self.received = 0
        self.files += 1

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > self.limit:
            self.too_large.append(self.file_name or "")
            self.dropped.append(self.files - 1)
            raise SkipFile  # the later handlers never see the rest of this file
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler (memory or temporary file) builds the file

    def upload_complete(self) -> None:
        # gunicorn ends the body where a dropped connection cut it, and Django's parser then keeps
        # the files that arrived whole. The parser has read all there was by now; the count is
        # Django's LimitedStream's (Django 5: `_pos`).
        received = self.request._stream._pos  # type: ignore[union-attr]
        if received < self.body_length:
            raise Truncated(received, self.body_length)
