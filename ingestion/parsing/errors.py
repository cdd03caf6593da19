class ParseError(Exception):
    """A readable reason a document cannot be ingested; shown to the admin as is."""


class Encrypted(ParseError):
    """The file is password-protected: the document ends with status "encrypted"."""
