"""The one error type of the media library."""


class MediaError(Exception):
    """Bad input media: names the offending file and says what is wrong with it.

    ``file`` is a file name as a client knows it (a base name, or an archive entry), never a
    server path; ``reason`` is a short human-readable sentence fragment.
    """

    def __init__(self, file: str, reason: str) -> None:
        # Both go to Exception so that the error pickles and unpickles unchanged.
        super().__init__(file, reason)
        self.file = file
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"
