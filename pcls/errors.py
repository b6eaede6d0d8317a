"""The one error type users see: a message meant for a person, turned into one red line + exit 2 by the CLI."""


class PclsError(Exception):
    """A problem with the user's input or environment, with a message that says what to do.

    The CLI prints `error: <message>` on one line and exits with `exit_code` (2 by default);
    `--debug` adds the traceback.
    """

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


def short_repr(value, limit: int = 120) -> str:
    """repr(value) for a message, at most `limit` characters: never formats an unbounded value (a YAML alias
    bomb's repr is gigabytes). Containers are walked only as far as needed (reprlib), strings are cut."""
    import reprlib

    shortener = reprlib.Repr()
    shortener.maxlevel, shortener.maxstring, shortener.maxother = 3, limit, limit
    shortener.maxlist = shortener.maxtuple = shortener.maxdict = shortener.maxset = 8
    return clip(shortener.repr(value), limit)


def clip(text: str, limit: int = 200) -> str:
    """`text` cut to `limit` characters (an error's own message quoted in ours)."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def closest(word: str, choices, n: int = 1):
    """The choice(s) most similar to `word` (for "did you mean ..." hints); [] when nothing is close."""
    import difflib

    return difflib.get_close_matches(word, list(choices), n=n, cutoff=0.5)


def did_you_mean(word: str, choices, n: int = 1) -> str:
    """' (did you mean X?)', ' (did you mean X or Y?)' (up to n) or '' — appended to unknown-name errors.
    A choice that differs from `word` only in case is the one suggestion."""
    choices = list(choices)
    hits = [c for c in choices if c.lower() == word.lower()] or closest(word, choices, n=n)
    return f" (did you mean {' or '.join(hits)}?)" if hits else ""
