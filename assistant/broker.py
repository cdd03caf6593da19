"""The embedded profile's folder broker, with each message file written whole before it appears.

kombu's filesystem transport creates the message file in the queue folder and then writes it: a
worker listing the folder in between takes the empty file, fails to decode it and the task is lost
(celery/kombu#1551; seen here as an upload that never left "queued"). This channel writes the
message under a name the readers skip, and renames it into place in one step."""

import os
import tempfile
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs) -> None:  # type: ignore[override]  # kombu disagrees with itself
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"  # kombu's own format
        # Readers take only "<stamp>_<id>.<queue>.msg": a name starting with a dot is skipped.
        fd, partial = tempfile.mkstemp(dir=self.data_folder_out, prefix=".", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
                f.flush()
                os.fsync(f.fileno())  # durable: a crash never leaves an empty message behind
            os.replace(partial, os.path.join(self.data_folder_out, name))
        except OSError as exc:
            raise ChannelError(f"Cannot add a message to {self.data_folder_out}") from exc
        finally:
            if os.path.exists(partial):
                os.remove(partial)


class Transport(filesystem.Transport):
    Channel = Channel
