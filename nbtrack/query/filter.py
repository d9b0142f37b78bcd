"""Parse ``filter_string`` and ``order_by`` clauses into a small, immutable AST.

The language is MLflow's ``search_runs`` filter language, extended with ``OR`` and parentheses
(``AND`` binds tighter than ``OR``)::

    metrics.acc > 0.9 AND (params.model = 'rf' OR tags.team ILIKE '%ml%')

Grammar (EBNF-ish; keywords are case-insensitive, whitespace separates tokens)::

    filter      = [ or_expr ] EOF ;
    or_expr     = and_expr { "OR" and_expr } ;
    and_expr    = primary { "AND" primary } ;
    primary     = "(" or_expr ")" | comparison ;
    comparison  = identifier ( compare_op value
                             | ( "LIKE" | "ILIKE" ) string
                             | [ "NOT" ] "IN" "(" string { "," string } ")"
                             | "IS" [ "NOT" ] "NULL" ) ;
    compare_op  = "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">=" ;
    identifier  = prefix "." key | attribute_name ;
    prefix      = "metric" | "metrics"                          (* -> kind "metric" *)
                | "param" | "params"                            (* -> kind "param" *)
                | "tag" | "tags"                                (* -> kind "tag" *)
                | "attribute" | "attributes" | "attr" | "run" ; (* -> kind "attribute" *)
    key         = bare_key | "`" quoted "`" | '"' quoted '"' ;
    bare_key    = { letter | digit | "_" | "-" | "." | "/" }- ;
                  (* the first "." ends the prefix: tags.nbtrack.user -> key "nbtrack.user" *)
    attribute_name = "run_id" | "run_name" | "status" | "start_time" | "end_time"
                   | "artifact_uri" | "user_id" | "created" | "user" ;
    value       = number | string ;
    number      = [ "+" | "-" ] ( digits [ "." digits ] | "." digits ) [ exponent ]
                | [ "+" | "-" ] ( "inf" | "infinity" ) | "NaN" ;
    string      = "'" { char } "'" | '"' { char } '"' ;

Inside quotes (strings and quoted keys) a doubled quote character stands for itself and a
backslash escapes ``\\'``, ``\\"``, ``\\\\`` and ``\\```; any other backslash is kept literally.
``created`` is an alias of ``start_time`` and ``user`` of ``user_id``; both are normalised away.

Type rules, checked while parsing:

- metrics compare with numbers (including ``NaN``, ``inf``, ``-inf``) using ``= != < <= > >=``;
- params and tags compare with quoted strings using ``= != LIKE ILIKE IN NOT IN``;
- ``start_time`` and ``end_time`` are numbers (ms since the epoch) and take ``= != < <= > >=``;
  the other attributes are strings and take ``= != LIKE ILIKE IN NOT IN``;
- every kind accepts ``IS NULL`` / ``IS NOT NULL`` (the run lacks / has the key or value).

``order_by`` clauses are ``identifier [ "ASC" | "DESC" ] { "," identifier [ "ASC" | "DESC" ] }``.

Every malformed input raises :class:`~nbtrack.exceptions.FilterSyntaxError` whose ``position``
is the 0-based offset of the offending token (or the end of the text when something is missing).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from nbtrack.exceptions import FilterSyntaxError

__all__ = [
    "BoolOp",
    "Comparison",
    "FilterNode",
    "OrderKey",
    "format_filter",
    "parse_experiment_filter",
    "parse_filter",
    "parse_order_by",
]

_Kind = Literal["metric", "param", "tag", "attribute"]


@dataclass(frozen=True)
class Comparison:
    """One comparison of a run's metric, param, tag or attribute with a value.

    Attributes
    ----------
    kind : {"metric", "param", "tag", "attribute"}
        What is compared.
    key : str
        The metric/param/tag key, or the canonical attribute name (``run_id``, ``run_name``,
        ``status``, ``start_time``, ``end_time``, ``artifact_uri``, ``user_id``).
    op : str
        One of ``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``LIKE``, ``ILIKE``, ``IN``,
        ``NOT IN``, ``IS NULL``, ``IS NOT NULL``.
    value : float or str or tuple of str or None
        A float for metrics (may be NaN or +-inf), an int or float for ``start_time`` and
        ``end_time``, a str for the other kinds, a tuple of str for ``IN`` / ``NOT IN`` and
        None for ``IS NULL`` / ``IS NOT NULL``.
    """

    kind: Literal["metric", "param", "tag", "attribute"]
    key: str
    op: str
    value: float | str | tuple[str, ...] | None


@dataclass(frozen=True)
class BoolOp:
    """``AND`` or ``OR`` of two or more sub-filters.

    Attributes
    ----------
    op : {"AND", "OR"}
        The connective.
    items : tuple of FilterNode
        The operands, in source order. A parenthesised group stays a separate node, so
        ``(a AND b) AND c`` and ``a AND b AND c`` give different (but equivalent) trees.
    """

    op: Literal["AND", "OR"]
    items: tuple[FilterNode, ...]


FilterNode: TypeAlias = Comparison | BoolOp


@dataclass(frozen=True)
class OrderKey:
    """One key of an ``order_by`` clause.

    Attributes
    ----------
    kind : {"metric", "param", "tag", "attribute"}
        What is sorted on.
    key : str
        The key, or the canonical attribute name.
    ascending : bool
        True for ``ASC`` (the default), False for ``DESC``.
    """

    kind: Literal["metric", "param", "tag", "attribute"]
    key: str
    ascending: bool


# --------------------------------------------------------------------------- vocabulary

_PREFIXES: dict[str, _Kind] = {
    "metric": "metric",
    "metrics": "metric",
    "param": "param",
    "params": "param",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
}
_PREFIX_WORD: dict[str, str] = {
    "metric": "metrics",
    "param": "params",
    "tag": "tags",
    "attribute": "attributes",
}
_ATTRIBUTE_ALIASES: dict[str, str] = {
    "run_id": "run_id",
    "run_name": "run_name",
    "status": "status",
    "start_time": "start_time",
    "created": "start_time",
    "end_time": "end_time",
    "artifact_uri": "artifact_uri",
    "user_id": "user_id",
    "user": "user_id",
}
_NUMERIC_ATTRIBUTES = frozenset({"start_time", "end_time"})
_ALLOWED_ATTRIBUTES = (
    "run_id, run_name, status, start_time, end_time, artifact_uri, user_id "
    "(aliases: created = start_time, user = user_id)"
)


@dataclass(frozen=True)
class _Vocabulary:
    """What the filters of one kind of search may name."""

    what: str  # "runs" or "experiments"
    kinds: frozenset[str]  # the prefixes allowed
    attributes: dict[str, str]  # attribute name or alias -> canonical name
    numeric: frozenset[str]  # attributes that are numbers (times in ms)
    allowed: str  # the attributes, as error messages list them
    examples: str  # what a comparison starts with, as error messages show it
    prefixes: str  # the prefixes, as error messages list them


_RUNS = _Vocabulary(
    "runs",
    frozenset(_PREFIX_WORD),
    _ATTRIBUTE_ALIASES,
    _NUMERIC_ATTRIBUTES,
    _ALLOWED_ATTRIBUTES,
    "metrics.acc, params.lr, tags.team or an attribute like status",
    "metrics., params., tags. or attributes. (or metric., param., tag., attr., run.)",
)
_EXPERIMENTS = _Vocabulary(
    "experiments",
    frozenset({"tag", "attribute"}),
    {k: k for k in ("name", "experiment_id", "creation_time", "last_update_time")},
    frozenset({"creation_time", "last_update_time"}),
    "name, experiment_id, creation_time, last_update_time",
    "tags.team or an attribute like name",
    "tags. or attributes. (or tag., attr.)",
)
_KEYWORDS = frozenset({"AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE", "ASC", "DESC"})
_SPECIAL_FLOATS: dict[str, float] = {
    "nan": math.nan,
    "inf": math.inf,
    "infinity": math.inf,
}

_COMPARE_OPS = ("=", "!=", "<", "<=", ">", ">=")
_NULL_OPS = ("IS NULL", "IS NOT NULL")
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
_OPS_BY_TYPE: dict[str, frozenset[str]] = {
    "number": frozenset(_COMPARE_OPS + _NULL_OPS),
    "string": frozenset(_STRING_OPS + _NULL_OPS),
}

_NUMBER_RE = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER_RE = re.compile(r"[+-]?[0-9]+")
_PLAIN_KEY_RE = re.compile(r"[\w\-./]+")  # what _ident_char reads: keys written unquoted
_ESCAPABLE = frozenset("\\'\"`")
_MAX_DEPTH = 100
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


# --------------------------------------------------------------------------- tokenizer


def _ident_start(ch: str) -> bool:
    """Whether a word (a prefix, a keyword, an unquoted key) may start with ``ch``: a letter of
    any script or ``_``, as MLflow's parser takes them (``params.métrica``, ``metrics.損失``)."""
    return ch.isalpha() or ch == "_"


def _ident_char(ch: str) -> bool:
    """Whether a word may go on with ``ch``: letters and digits of any script, ``_ - . /``."""
    return ch.isalnum() or ch in "_-./"


@dataclass(frozen=True)
class _Token:
    """A lexical token.

    ``type`` is one of IDENT, STRING, BACKQUOTED, NUMBER, OP, LPAREN, RPAREN, COMMA, EOF.
    ``value`` is the unescaped text of a STRING/BACKQUOTED, the normalised operator of an OP, the
    key of an IDENT (the whole word when it has no prefix) and the raw text of a NUMBER.
    """

    type: str
    pos: int
    end: int
    text: str
    value: str = ""
    prefix: str | None = None


def _read_quoted(text: str, start: int) -> tuple[str, int]:
    """Read the quoted string whose opening quote is at ``start``; return (value, end)."""
    quote = text[start]
    n = len(text)
    i = start + 1
    out: list[str] = []
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] in _ESCAPABLE:
            out.append(text[i + 1])
            i += 2
            continue
        if ch == quote:
            if i + 1 < n and text[i + 1] == quote:
                out.append(quote)
                i += 2
                continue
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    what = "quoted key" if quote == "`" else "string"
    raise FilterSyntaxError(
        f"unterminated {what}: the {quote} opened here is never closed", text, start
    )


def _tokenize(text: str) -> list[_Token]:
    """Split ``text`` into tokens, ending with an EOF token at ``len(text)``."""
    tokens: list[_Token] = []
    n = len(text)
    i = 0
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        start = i
        if ch in "(),":
            kind = {"(": "LPAREN", ")": "RPAREN", ",": "COMMA"}[ch]
            tokens.append(_Token(kind, start, start + 1, ch, ch))
            i += 1
        elif ch in "=!<>":
            two = text[i : i + 2]
            if two in ("==", "!=", "<>", "<=", ">="):
                op = {"==": "=", "<>": "!="}.get(two, two)
                tokens.append(_Token("OP", start, start + 2, two, op))
                i += 2
            elif ch == "!":
                raise FilterSyntaxError("unexpected '!': did you mean '!='?", text, start)
            else:
                tokens.append(_Token("OP", start, start + 1, ch, ch))
                i += 1
        elif ch in "'\"":
            value, i = _read_quoted(text, start)
            tokens.append(_Token("STRING", start, i, text[start:i], value))
        elif ch == "`":
            value, i = _read_quoted(text, start)
            if i < n and text[i] == "." and value.isidentifier():  # `metrics`.acc, as MLflow
                key_start = j = i + 1
                if j < n and text[j] in '`"':
                    key, j = _read_quoted(text, j)
                else:
                    while j < n and _ident_char(text[j]):
                        j += 1
                    key = text[key_start:j]
                tokens.append(_Token("IDENT", start, j, text[start:j], key, value))
                i = j
            else:
                tokens.append(_Token("BACKQUOTED", start, i, text[start:i], value))
        elif ch in "0123456789" or ch == "." or ch in "+-":
            tokens.append(_read_number(text, start))
            i = tokens[-1].end
        elif _ident_start(ch):
            j = i
            while j < n and _ident_char(text[j]):
                j += 1
            word = text[i:j]
            if "." in word:
                prefix, key = word.split(".", 1)
                if key == "" and j < n and text[j] in '`"':
                    key, j = _read_quoted(text, j)
                tokens.append(_Token("IDENT", start, j, text[start:j], key, prefix))
            else:
                tokens.append(_Token("IDENT", start, j, word, word))
            i = j
        else:
            last = tokens[-1] if tokens else None
            if last is not None and last.type == "IDENT" and last.prefix and last.end == start:
                end = start
                while end < n and not text[end].isspace() and text[end] not in "=!<>(),'\"":
                    end += 1
                key = last.value + text[start:end]
                raise FilterSyntaxError(
                    f"unexpected character {ch!r} in a key: put a key with such characters in "
                    f"backquotes: {last.prefix}.`{_shorten(key)}`",
                    text,
                    start,
                )
            raise FilterSyntaxError(f"unexpected character {ch!r}", text, start)
    tokens.append(_Token("EOF", n, n, ""))
    return tokens


def _read_number(text: str, start: int) -> _Token:
    """Read a number (optionally signed, or a signed ``inf``/``nan``) starting at ``start``."""
    n = len(text)
    i = start
    if text[i] in "+-":
        i += 1
    match = _NUMBER_RE.match(text, i)
    if match is not None:
        end = match.end()
    elif i > start and i < n and _ident_start(text[i]):
        end = i
        while end < n and _ident_char(text[end]):
            end += 1
        if text[i:end].lower() not in _SPECIAL_FLOATS:
            raise FilterSyntaxError(
                f"unexpected {text[start]!r}: expected a number after the sign", text, start
            )
    else:
        raise FilterSyntaxError(f"unexpected character {text[start]!r}", text, start)
    if end < n and _ident_char(text[end]):
        raise FilterSyntaxError(
            "malformed number: write numbers like 3, -0.5, 1e-3, inf or NaN", text, start
        )
    raw = text[start:end]
    return _Token("NUMBER", start, end, raw, raw)


# --------------------------------------------------------------------------- formatting helpers


def _format_key(kind: str, key: str) -> str:
    """``prefix.key``, backquoting the key when it is not a plain identifier."""
    prefix = _PREFIX_WORD.get(kind, kind)
    if _PLAIN_KEY_RE.fullmatch(key):
        return f"{prefix}.{key}"
    escaped = key.replace("\\", "\\\\").replace("`", "\\`")
    return f"{prefix}.`{escaped}`"


def _format_string(value: str) -> str:
    """Single-quote ``value``, escaping backslashes and single quotes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _format_number(value: float) -> str:
    """A number literal that reads back as the same value (``NaN``, ``inf``, ``-inf`` included)."""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    return str(int(value))


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(tok: _Token) -> str:
    if tok.type == "EOF":
        return "the end of the text"
    return repr(_shorten(tok.text))


# --------------------------------------------------------------------------- parser


def _is_keyword(tok: _Token, *words: str) -> bool:
    return tok.type == "IDENT" and tok.prefix is None and tok.value.upper() in words


class _Parser:
    """Recursive-descent parser over the token list of one text."""

    def __init__(self, text: str, vocabulary: _Vocabulary = _RUNS) -> None:
        self.text = text
        self.vocab = vocabulary
        self.tokens = _tokenize(text)
        self.index = 0

    def value_type(self, kind: str, key: str) -> str:
        """``"number"`` or ``"string"``: what values a comparison on (kind, key) takes."""
        if kind == "metric" or (kind == "attribute" and key in self.vocab.numeric):
            return "number"
        return "string"

    def keyed_examples(self, key: str) -> str:
        """``metrics.x, params.x or tags.x``: the keyed forms this search allows."""
        kinds = [k for k in ("metric", "param", "tag") if k in self.vocab.kinds]
        forms = [f"{_PREFIX_WORD[k]}.{key}" for k in kinds]
        return forms[0] if len(forms) == 1 else ", ".join(forms[:-1]) + " or " + forms[-1]

    # -- token helpers
    def peek(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        tok = self.tokens[self.index]
        if tok.type != "EOF":
            self.index += 1
        return tok

    def error(self, message: str, tok: _Token) -> FilterSyntaxError:
        return FilterSyntaxError(message, self.text, tok.pos)

    # -- identifiers
    def identifier(self, context: str) -> tuple[_Kind, str, _Token]:
        """Read an identifier and resolve it to (kind, key)."""
        tok = self.advance()
        if tok.type == "BACKQUOTED":
            raise self.error(
                "a backquoted key needs a prefix: write metrics.`...`, params.`...` or tags.`...`",
                tok,
            )
        if tok.type != "IDENT":
            raise self.error(
                f"expected {context} (such as {self.vocab.examples}) but found {_describe(tok)}",
                tok,
            )
        if tok.prefix is None:
            name = tok.value.lower()
            if name in self.vocab.attributes:
                return "attribute", self.vocab.attributes[name], tok
            if tok.value.upper() in _KEYWORDS:
                raise self.error(
                    f"expected {context} (such as {self.vocab.examples}) but found the keyword "
                    f"{tok.value.upper()}",
                    tok,
                )
            if name in _PREFIXES:
                raise self.error(f"{tok.value!r} needs a key: write {tok.value}.<key>", tok)
            raise self.error(
                f"unknown attribute {tok.value!r}: for a keyed value write "
                f"{self.keyed_examples(tok.value)}; attributes are {self.vocab.allowed}",
                tok,
            )
        kind = _PREFIXES.get(tok.prefix.lower())
        if kind is not None and self.vocab.what == "experiments" and tok.prefix.lower() == "run":
            kind = None  # run. means attributes. of runs only
        if kind is None:
            raise self.error(
                f"unknown prefix {_shorten(tok.prefix)!r}: use {self.vocab.prefixes}",
                tok,
            )
        if tok.value == "":
            raise self.error(
                f"missing key after {tok.prefix}.: write {tok.prefix}.name or {tok.prefix}.`a key`",
                tok,
            )
        if kind not in self.vocab.kinds:
            raise self.error(
                f"{self.vocab.what} have no {_PREFIX_WORD[kind]}: filter on "
                f"{self.keyed_examples('<key>')} or an attribute ({self.vocab.allowed})",
                tok,
            )
        if kind == "attribute":
            canonical = self.vocab.attributes.get(tok.value.lower())
            if canonical is None:
                raise self.error(
                    f"unknown attribute {_shorten(tok.value)!r}: allowed attributes are "
                    f"{self.vocab.allowed}",
                    tok,
                )
            return kind, canonical, tok
        return kind, tok.value, tok

    # -- filter grammar
    def parse_filter(self) -> FilterNode:
        node = self.or_expr(0)
        tok = self.peek()
        if tok.type == "RPAREN":
            raise self.error("unbalanced parenthesis: this ')' has no matching '('", tok)
        if tok.type != "EOF":
            raise self.error(
                f"expected AND, OR or the end of the filter but found {_describe(tok)}", tok
            )
        return node

    def or_expr(self, depth: int) -> FilterNode:
        items = [self.and_expr(depth)]
        while _is_keyword(self.peek(), "OR"):
            self.advance()
            items.append(self.and_expr(depth))
        return items[0] if len(items) == 1 else BoolOp("OR", tuple(items))

    def and_expr(self, depth: int) -> FilterNode:
        items = [self.primary(depth)]
        while _is_keyword(self.peek(), "AND"):
            self.advance()
            items.append(self.primary(depth))
        return items[0] if len(items) == 1 else BoolOp("AND", tuple(items))

    def primary(self, depth: int) -> FilterNode:
        tok = self.peek()
        if tok.type != "LPAREN":
            return self.comparison()
        if depth >= _MAX_DEPTH:
            raise self.error(f"parentheses nested more than {_MAX_DEPTH} deep", tok)
        self.advance()
        if self.peek().type == "RPAREN":
            raise self.error("empty parentheses: expected a comparison inside", self.peek())
        node = self.or_expr(depth + 1)
        close = self.peek()
        if close.type == "EOF":
            raise self.error(
                f"unbalanced parenthesis: the '(' at position {tok.pos} is never closed", close
            )
        if close.type != "RPAREN":
            raise self.error(f"expected ')', AND or OR but found {_describe(close)}", close)
        self.advance()
        return node

    def comparison(self) -> Comparison:
        kind, key, ident = self.identifier("a comparison")
        shown = _format_key(kind, key)
        op_tok = self.peek()
        op = self.operator(ident)
        vtype = self.value_type(kind, key)
        if op not in _OPS_BY_TYPE[vtype]:
            raise self.error(self.op_message(kind, key, op), op_tok)
        if op in _NULL_OPS:
            return Comparison(kind, key, op, None)
        if op in ("IN", "NOT IN"):
            return Comparison(kind, key, op, self.string_list(kind, shown, op))
        return Comparison(kind, key, op, self.value(kind, key, shown, op))

    def op_message(self, kind: str, key: str, op: str) -> str:
        if kind == "metric":
            return (
                f"{op} is not allowed on metrics: metrics compare with numbers using "
                "=, !=, <, <=, >, >= (or IS NULL / IS NOT NULL)"
            )
        if kind in ("param", "tag"):
            return (
                f"{op} is not allowed on {kind}s: {kind} values are strings and support "
                "=, !=, LIKE, ILIKE, IN, NOT IN, IS NULL and IS NOT NULL"
            )
        if key in self.vocab.numeric:
            return (
                f"{op} is not allowed on {key}: it is a time in milliseconds and supports "
                "=, !=, <, <=, >, >=, IS NULL and IS NOT NULL"
            )
        return (
            f"{op} is not allowed on {key}: it is a string attribute and supports "
            "=, !=, LIKE, ILIKE, IN, NOT IN, IS NULL and IS NOT NULL"
        )

    def operator(self, ident: _Token) -> str:
        tok = self.advance()
        if tok.type == "OP":
            return tok.value
        if _is_keyword(tok, "LIKE", "ILIKE", "IN"):
            return tok.value.upper()
        if _is_keyword(tok, "NOT"):
            nxt = self.advance()
            if not _is_keyword(nxt, "IN"):
                raise self.error(
                    f"expected IN after NOT but found {_describe(nxt)} (only NOT IN is supported)",
                    nxt,
                )
            return "NOT IN"
        if _is_keyword(tok, "IS"):
            nxt = self.advance()
            negated = _is_keyword(nxt, "NOT")
            if negated:
                nxt = self.advance()
            if not _is_keyword(nxt, "NULL"):
                raise self.error(
                    f"expected NULL or NOT NULL after IS but found {_describe(nxt)}", nxt
                )
            return "IS NOT NULL" if negated else "IS NULL"
        if tok.type == "EOF":
            what = "missing operator"
        else:
            what = f"expected an operator but found {_describe(tok)}"
        hint = ""
        if tok.type == "IDENT" and tok.prefix is None and ident.prefix:  # metrics.val loss > 0
            hint = (
                f"; a key with spaces goes in backquotes: "
                f"{ident.prefix}.`{_shorten(ident.value)} {_shorten(tok.text)}`"
            )
        raise self.error(
            f"{what} after {_shorten(ident.text)}: use =, !=, <, <=, >, >=, LIKE, ILIKE, IN, "
            f"NOT IN, IS NULL or IS NOT NULL{hint}",
            tok,
        )

    def value(self, kind: _Kind, key: str, shown: str, op: str) -> float | str:
        tok = self.advance()
        vtype = self.value_type(kind, key)
        if tok.type == "EOF":
            raise self.error(f"missing value after {shown} {op}", tok)
        is_number = tok.type == "NUMBER" or (
            tok.type == "IDENT" and tok.prefix is None and tok.value.lower() in _SPECIAL_FLOATS
        )
        if is_number:
            if vtype == "string":
                raise self.error(self.string_hint(kind, key, shown, op, tok.text), tok)
            return self.number(kind, key, tok)
        if tok.type == "STRING":
            if vtype == "number":
                raise self.error(self.number_hint(kind, key, shown, op, tok.value), tok)
            return tok.value
        if tok.type == "LPAREN":
            raise self.error("a parenthesised list is only allowed after IN or NOT IN", tok)
        if tok.type == "IDENT" and vtype == "string":
            raise self.error(
                f"expected a quoted string after {op} but found {_describe(tok)}: "
                f"write {shown} {op} '{_shorten(tok.text)}'",
                tok,
            )
        expected = "a number" if vtype == "number" else "a quoted string"
        raise self.error(f"expected {expected} after {op} but found {_describe(tok)}", tok)

    def number(self, kind: str, key: str, tok: _Token) -> float:
        raw = tok.value if tok.type == "NUMBER" else tok.value.lower()
        sign = -1.0 if raw.startswith("-") else 1.0
        bare = raw.lstrip("+-").lower()
        if bare in _SPECIAL_FLOATS:
            if kind != "metric":
                raise self.error(
                    "NaN and inf are only allowed for metrics: times are finite numbers", tok
                )
            return math.nan if bare == "nan" else sign * math.inf
        if kind == "metric":
            return float(raw)
        if _INTEGER_RE.fullmatch(raw) and len(raw) <= 25:
            as_int = int(raw)
            if _INT64_MIN <= as_int <= _INT64_MAX:
                return as_int
        as_float = float(raw)
        if not math.isfinite(as_float):
            raise self.error(f"{key} must be a finite number (milliseconds since the epoch)", tok)
        return as_float

    def string_hint(self, kind: str, key: str, shown: str, op: str, raw: str) -> str:
        if kind == "attribute":
            return f"{key} is a string attribute: write {shown} {op} '{_shorten(raw)}'"
        return f"{kind} values are strings: write {shown} {op} '{_shorten(raw)}'"

    def number_hint(self, kind: str, key: str, shown: str, op: str, value: str) -> str:
        try:
            float(value)
        except ValueError:
            looks_numeric = False
        else:
            looks_numeric = True
        if kind == "metric":
            if looks_numeric:
                return f"metric values are numbers: write {shown} {op} {_shorten(value.strip())}"
            return "metric values are numbers (or NaN, inf, -inf), not strings"
        if looks_numeric:
            return f"{key} is a number (milliseconds since the epoch): write {shown} {op} {value}"
        return f"{key} is a number (milliseconds since the epoch), not a string"

    def string_list(self, kind: _Kind, shown: str, op: str) -> tuple[str, ...]:
        open_tok = self.advance()
        if open_tok.type != "LPAREN":
            raise self.error(
                f"{op} needs a parenthesised list of quoted strings, e.g. {shown} {op} ('a', 'b')",
                open_tok,
            )
        if self.peek().type == "RPAREN":
            raise self.error(f"empty list after {op}: give at least one quoted string", self.peek())
        items: list[str] = []
        while True:
            tok = self.advance()
            if tok.type == "STRING":
                items.append(tok.value)
            elif tok.type == "EOF":
                raise self.error(f"unterminated list after {op}: missing ')'", tok)
            elif tok.type == "NUMBER" or _is_keyword(tok, "NAN", "INF", "INFINITY"):
                what = f"{kind} values" if kind != "attribute" else "attribute values"
                raise self.error(
                    f"{what} are strings: quote every item, e.g. {shown} {op} ('{tok.text}')", tok
                )
            else:
                raise self.error(
                    f"expected a quoted string in the list but found {_describe(tok)}", tok
                )
            sep = self.advance()
            if sep.type == "RPAREN":
                return tuple(items)
            if sep.type == "EOF":
                raise self.error(f"unterminated list after {op}: missing ')'", sep)
            if sep.type != "COMMA":
                raise self.error(f"expected ',' or ')' in the list but found {_describe(sep)}", sep)

    # -- order_by grammar
    def parse_order_by(self) -> list[OrderKey]:
        keys: list[OrderKey] = []
        while True:
            kind, key, _ = self.identifier("a key to order by")
            ascending = True
            tok = self.peek()
            if _is_keyword(tok, "ASC", "DESC"):
                ascending = tok.value.upper() == "ASC"
                self.advance()
            keys.append(OrderKey(kind, key, ascending))
            tok = self.advance()
            if tok.type == "EOF":
                return keys
            if tok.type != "COMMA":
                raise self.error(
                    f"expected ASC, DESC, ',' or the end of the clause but found {_describe(tok)}",
                    tok,
                )


# --------------------------------------------------------------------------- public API


def parse_filter(text: str) -> FilterNode | None:
    """Parse a ``filter_string`` into an AST.

    Parameters
    ----------
    text : str
        The filter, e.g.
        ``"metrics.acc > 0.9 AND (params.model = 'rf' OR tags.team ILIKE '%ml%')"``.
        See the module docstring for the grammar.

    Returns
    -------
    FilterNode or None
        The AST, or None when ``text`` is empty or only whitespace (no filtering).

    Raises
    ------
    FilterSyntaxError
        For any malformed input; ``position`` is the 0-based offset of the offending token, or
        ``len(text)`` when something is missing at the end. No other exception escapes.
    """
    return _parse(text, _RUNS)


def parse_experiment_filter(text: str) -> FilterNode | None:
    """Parse a ``search_experiments`` filter: the same language over ``tags.<key>`` and the
    attributes ``name``, ``experiment_id`` (strings) and ``creation_time``,
    ``last_update_time`` (milliseconds since the epoch)."""
    return _parse(text, _EXPERIMENTS)


def _parse(text: str, vocabulary: _Vocabulary) -> FilterNode | None:
    if not isinstance(text, str):
        raise FilterSyntaxError(f"filter_string must be a str, not {type(text).__name__}")
    if not text.strip():
        return None
    try:
        return _Parser(text, vocabulary).parse_filter()
    except FilterSyntaxError:
        raise
    except Exception as exc:  # pragma: no cover - defensive: only FilterSyntaxError may escape
        raise FilterSyntaxError(
            f"internal error while parsing the filter: {exc!r}", text, 0
        ) from exc


def parse_order_by(clauses: Sequence[str] | str | None) -> list[OrderKey]:
    """Parse ``order_by`` clauses.

    Parameters
    ----------
    clauses : sequence of str, str or None
        Clauses such as ``"metrics.acc DESC"``, ``"params.lr"``, ``"attributes.start_time ASC"``,
        ``"start_time"`` or ``"run_name desc"``. A single string may hold several keys separated
        by commas. The direction defaults to ascending. Empty or whitespace-only clauses are
        ignored.

    Returns
    -------
    list of OrderKey
        One entry per key, in order of priority.

    Raises
    ------
    FilterSyntaxError
        For a malformed clause; ``text`` is that clause and ``position`` points into it.
    """
    if clauses is None:
        return []
    if isinstance(clauses, str):
        clauses = [clauses]
    if not isinstance(clauses, Sequence):
        raise FilterSyntaxError(
            f"order_by must be a list of str, a str or None, not {type(clauses).__name__}"
        )
    keys: list[OrderKey] = []
    for clause in clauses:
        if not isinstance(clause, str):
            raise FilterSyntaxError(
                f"each order_by clause must be a str, not {type(clause).__name__}"
            )
        if not clause.strip():
            continue
        try:
            keys.extend(_Parser(clause).parse_order_by())
        except FilterSyntaxError:
            raise
        except Exception as exc:  # pragma: no cover - defensive: only FilterSyntaxError escapes
            raise FilterSyntaxError(
                f"internal error while parsing order_by: {exc!r}", clause, 0
            ) from exc
    return keys


def format_filter(node: FilterNode | None) -> str:
    """Turn an AST back into a filter string.

    ``parse_filter(format_filter(node)) == node`` for every well-formed AST (NaN values compare
    unequal to themselves, so compare those with :func:`math.isnan`). Keys that are not plain
    identifiers are backquoted; strings are single-quoted with ``\\`` and ``'`` escaped.

    Parameters
    ----------
    node : FilterNode or None
        The AST; None gives the empty string.

    Returns
    -------
    str
        The filter string.

    Raises
    ------
    ValueError
        If the AST is malformed (an unknown node type, or a BoolOp without items).
    """
    if node is None:
        return ""
    if isinstance(node, BoolOp):
        if not node.items:
            raise ValueError("a BoolOp needs at least one item")
        parts = []
        for item in node.items:
            text = format_filter(item)
            # A nested group needs parentheses unless it is an AND inside an OR (AND binds
            # tighter); same-op nesting keeps them so that the tree shape survives a round trip.
            nested = isinstance(item, BoolOp) and len(item.items) > 1
            if nested and not (node.op == "OR" and item.op == "AND"):
                text = f"({text})"
            parts.append(text)
        return f" {node.op} ".join(parts)
    if not isinstance(node, Comparison):
        raise ValueError(f"not a filter node: {node!r}")
    left = _format_key(node.kind, node.key)
    if node.op in _NULL_OPS:
        return f"{left} {node.op}"
    value = node.value
    if isinstance(value, tuple):
        listed = ", ".join(_format_string(str(v)) for v in value)
        return f"{left} {node.op} ({listed})"
    if isinstance(value, str):
        return f"{left} {node.op} {_format_string(value)}"
    if isinstance(value, (int, float)):
        return f"{left} {node.op} {_format_number(value)}"
    raise ValueError(f"unsupported value in {node!r}")
