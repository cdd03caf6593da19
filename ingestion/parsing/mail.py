"""EML and Outlook MSG: headers and body make the text; attachments are written out to be
ingested as documents of their own."""

import email
import uuid
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingestion.parsing.errors import Encrypted, ParseError
from ingestion.parsing.text import html_to_text

if TYPE_CHECKING:
    from ingestion.parsing import Attachment, Page

ENCRYPTED_TYPES = {"multipart/encrypted", "application/pkcs7-mime", "application/x-pkcs7-mime"}
ENCRYPTED_NAMES = (".pgp-encrypted", ".p7m", ".asc")
HEADERS = ["From", "To", "Cc", "Date", "Subject"]


def save(outdir: Path | None, name: str, data: bytes) -> "Attachment | None":
    from ingestion.parsing import Attachment

    if outdir is None or not data:
        return None
    target = outdir / uuid.uuid4().hex  # never the sender's file name
    target.write_bytes(data)
    return Attachment(name=name or "attachment", path=str(target))


def header_block(values: dict[str, object]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in values.items() if v)


def parse_eml(path: Path, outdir: Path | None) -> tuple[list["Page"], list["Attachment"]]:
    from ingestion.parsing import Page

    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    if not isinstance(message, EmailMessage) or not message.keys():
        raise ParseError("The file is not a valid e-mail message.")
    if message.get_content_type() in ENCRYPTED_TYPES:
        raise Encrypted("The e-mail is encrypted and cannot be read.")
    body_part = message.get_body(preferencelist=("plain", "html"))
    body = ""
    if body_part is not None:
        content = body_part.get_content()
        body = html_to_text(content) if body_part.get_content_type() == "text/html" else content
    attachments = []
    for part in message.iter_attachments():
        payload = part.get_payload(decode=True)
        saved = save(
            outdir, part.get_filename() or "", payload if isinstance(payload, bytes) else b""
        )
        if saved is not None:
            attachments.append(saved)
    headers = header_block({h: message.get(h) for h in HEADERS})
    return [Page(1, f"{headers}\n\n{body}", str(message.get("Subject", "")))], attachments


def parse_msg(path: Path, outdir: Path | None) -> tuple[list["Page"], list["Attachment"]]:
    import extract_msg

    from ingestion.parsing import Page

    try:
        message: Any = extract_msg.openMsg(str(path))
    except Exception:
        raise ParseError("The file is not a valid Outlook message.") from None
    try:
        names = [(a.longFilename or a.shortFilename or "") for a in message.attachments]
        body = message.body or ""
        if any(n.lower().endswith(ENCRYPTED_NAMES) for n in names) or "BEGIN PGP MESSAGE" in body:
            raise Encrypted("The e-mail is encrypted and cannot be read.")
        if not body.strip() and message.htmlBody:
            body = html_to_text(message.htmlBody.decode("utf-8", errors="replace"))
        headers = header_block(
            {
                "From": message.sender,
                "To": message.to,
                "Cc": message.cc,
                "Date": message.date,
                "Subject": message.subject,
            }  # fmt: skip
        )
        attachments = []
        for attachment, name in zip(message.attachments, names, strict=True):
            if isinstance(attachment.data, bytes):  # embedded messages are skipped
                saved = save(outdir, name, attachment.data)
                if saved is not None:
                    attachments.append(saved)
        return [Page(1, f"{headers}\n\n{body}", message.subject or "")], attachments
    finally:
        message.close()
