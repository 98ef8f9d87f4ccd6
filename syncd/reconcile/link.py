"""Cross-connection linking: which customer (and invoice) of one connection is which of another.

Pure: no I/O, no clock. The store loads both connections' records, the links that already exist
and the decisions people made; :func:`plan_customer_links` and :func:`plan_invoice_links` say
which new links to make and which questions to ask a person. Evidence is weighed strongest first,
and a record that takes part in an ambiguity at one level is held for a person: a weaker level
never gets to guess where a stronger one was unsure.

Customers (a level only sees the records the levels before it left free; "one-to-one" means the
candidate is the only one on both sides; method in brackets):

=======  ===========================================  ===========================  ==============
level    evidence                                     links when                   else a review
=======  ===========================================  ===========================  ==============
xref     one side's ``xref`` is the other's id        one-to-one [xref]            several claim
                                                                                   one record, or
                                                                                   it is linked
                                                                                   to another
tax id   equal normalized tax id                      one-to-one [exact]           shared tax id
e-mail   equal e-mail, name similarity >= 80          one-to-one [exact]           shared e-mail
name     equal normalized name                        one-to-one [exact]           same name twice
fuzzy    name similarity >= 80                        >= 92 and the best on both   below 92, or
                                                      sides by 5 or more [fuzzy]   too close
=======  ===========================================  ===========================  ==============

Invoices, only between linked customers: equal normalized number (``INV-0042`` = ``inv 42``) with
equal currency and total links (exact); equal digits (``INV-0042`` = ``42``, a prefix convention
of the other system) with equal currency and total links (fuzzy); an equal number with another
total, or another number with the same total, currency and issue date and no other candidate
("renumbered?") is only a review item, never a link.

Nothing already linked is touched, no link is ever removed, a pair a person called distinct is
never linked, and a question a person dismissed is asked again only when a new candidate appears.
So planning again after applying a plan yields nothing new (tested with hypothesis).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final, Generic, TypeVar

from rapidfuzz import fuzz, process


class Kind(StrEnum):
    CUSTOMER = "customer"
    INVOICE = "invoice"

    @property
    def review_kind(self) -> str:
        """The ``review_items.kind`` of a question about this kind of record."""
        return f"{self.value}_match"


class Method(StrEnum):
    XREF = "xref"
    EXACT = "exact"
    FUZZY = "fuzzy"
    MANUAL = "manual"


@dataclass(frozen=True)
class Thresholds:
    """Name similarity (rapidfuzz ``token_sort_ratio`` of normalized names, 0-100).

    ``link``: a unique best candidate at or above it links. ``review``: below it a candidate is
    not worth a person's time. ``margin``: the best must beat the runner-up on *both* sides by this
    much, else the two are too close to call. ``email_name``: an equal e-mail links only names at
    least this similar (one billing mailbox often serves several clients). ``max_block``: a name
    word shared by more records than this (``services``, ``group``) narrows nothing and is not used
    to find fuzzy candidates.
    """

    link: float = 92.0
    review: float = 80.0
    margin: float = 5.0
    email_name: float = 80.0
    max_block: int = 200


THRESHOLDS: Final = Thresholds()


@dataclass(frozen=True)
class CustomerFacts:
    """What linking needs of a stored customer."""

    external_id: str
    name: str
    email: str | None = None
    tax_id: str | None = None
    xref: str | None = None


@dataclass(frozen=True)
class InvoiceFacts:
    """What linking needs of a stored invoice."""

    external_id: str
    number: str
    customer_external_id: str
    total: Decimal
    currency: str
    issued_on: dt.date | None = None


@dataclass(frozen=True)
class Link:
    """A link between the left and the right connection of a pair (left sorts first by name).

    ``score`` is the name similarity of two linked customers, for audit; None for invoices.
    """

    kind: Kind
    left: str
    right: str
    method: Method
    score: Decimal | None = None


@dataclass(frozen=True)
class Review:
    """A question for a person. ``subject`` is stable ("customer cw:12 ~ qbo"), so the same
    question is not asked twice while it is open; ``pairs`` are its (left, right) candidates."""

    kind: Kind
    subject: str
    connection: str
    pairs: tuple[tuple[str, str], ...]
    detail: Mapping[str, Any]


@dataclass(frozen=True)
class Decisions:
    """What people decided: pairs that are not the same record, and questions they dismissed
    (subject -> the candidate pairs they saw)."""

    distinct: frozenset[tuple[Kind, str, str]] = frozenset()
    dismissed: Mapping[str, frozenset[tuple[str, str]]] = field(default_factory=dict)


@dataclass(frozen=True)
class LinkInputs:
    """Everything one pair of connections brings to the planner."""

    left: str
    right: str
    left_customers: Sequence[CustomerFacts] = ()
    right_customers: Sequence[CustomerFacts] = ()
    left_invoices: Sequence[InvoiceFacts] = ()
    right_invoices: Sequence[InvoiceFacts] = ()
    links: Sequence[Link] = ()  # existing links of this pair, any method
    decisions: Decisions = field(default_factory=Decisions)
    open_subjects: frozenset[str] = frozenset()  # subjects of this pair's open review items


@dataclass(frozen=True)
class LinkPlan:
    links: tuple[Link, ...] = ()
    reviews: tuple[Review, ...] = ()
    obsolete: tuple[str, ...] = ()  # open review subjects whose question no longer arises

    def __add__(self, other: LinkPlan) -> LinkPlan:
        return LinkPlan(
            self.links + other.links, self.reviews + other.reviews, self.obsolete + other.obsolete
        )


# --- normalization ------------------------------------------------------------------------------

# Words that name a legal form, not a business; dropped from the end of a name.
LEGAL_SUFFIXES: Final = frozenset(
    {"inc", "incorporated", "llc", "lc", "pllc", "llp", "lp", "ltd", "limited", "co", "corp"}
    | {"corporation", "company", "gmbh", "kg", "ag", "plc", "pty", "sa", "sarl", "bv", "nv", "srl"}
)
_JOINERS: Final = re.compile("['\u2019`.]")  # O'Brien -> obrien, L.L.C. -> llc
_SEPARATORS: Final = re.compile(r"[\W_]+")
_NOT_ALNUM: Final = re.compile(r"[^0-9A-Za-z]")
_NUMBER_PARTS: Final = re.compile(r"[^\W\d_]+|\d+")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def normalize_name(name: str) -> str:
    """Case, accents, punctuation, "&"/"and", legal suffixes and a leading "the" do not count.

    ``"The ACME, Inc."``, ``"acme inc"`` and ``"Acme LLC"`` all become ``"acme"``; a name made only
    of such words keeps them, so it is never empty unless it had no letters or digits at all.
    """
    text = _SEPARATORS.sub(" ", _JOINERS.sub("", _fold(name).replace("&", " and ")))
    words = text.split()
    if len(words) > 1 and words[0] == "the":
        words.pop(0)
    stripped = False
    while len(words) > 1 and (words[-1] in LEGAL_SUFFIXES or (stripped and words[-1] == "and")):
        words.pop()  # "Smith & Co." -> "smith and co" -> "smith"
        stripped = True
    return " ".join(words)


def normalize_email(email: str | None) -> str | None:
    text = (email or "").strip().casefold()
    return text if "@" in text else None


def normalize_tax_id(tax_id: str | None) -> str | None:
    """Only letters and digits count; placeholders ("N/A", "000000") are no tax id at all."""
    text = _NOT_ALNUM.sub("", tax_id or "").upper()
    if len(text) < 4 or not text.strip("0"):
        return None
    return text


def invoice_number_key(number: str) -> str:
    """Case, spacing, punctuation and leading zeros do not count: ``INV-0042`` = ``inv 42``."""
    parts = _NUMBER_PARTS.findall(_fold(number))
    return "".join(p.lstrip("0") or "0" if p.isdigit() else p for p in parts)


def invoice_digits_key(number: str) -> str | None:
    """Only the digits count (``INV-0042`` = ``42``); None when there are none."""
    digits = "".join(ch for ch in number if ch.isdigit()).lstrip("0")
    return digits or None


def name_similarity(left: str, right: str) -> float:
    """Similarity (0-100) of two normalized names, blind to word order."""
    return float(fuzz.token_sort_ratio(left, right))


# --- planning -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Edge:
    left: str
    right: str
    evidence: str
    score: float | None = None


F = TypeVar("F", bound=CustomerFacts | InvoiceFacts)


class _Planner(Generic[F]):
    """The mutable working state of one planning pass over one kind of record."""

    def __init__(
        self,
        kind: Kind,
        inputs: LinkInputs,
        left: Sequence[F],
        right: Sequence[F],
        describe: Callable[[F], dict[str, Any]],
    ) -> None:
        self.kind = kind
        self.inputs = inputs
        self.describe: Callable[[F], dict[str, Any]] = describe
        self.all_left: dict[str, F] = {r.external_id: r for r in sorted(left, key=_ext)}
        self.all_right: dict[str, F] = {r.external_id: r for r in sorted(right, key=_ext)}
        existing = [link for link in inputs.links if link.kind == kind]
        self.linked_left = {link.left: link.right for link in existing}
        self.linked_right = {link.right: link.left for link in existing}
        # The pools: records still free to link. Linking or holding one removes it.
        self.left: dict[str, F] = {
            k: v for k, v in self.all_left.items() if k not in self.linked_left
        }
        self.right: dict[str, F] = {
            k: v for k, v in self.all_right.items() if k not in self.linked_right
        }
        self.distinct = {(a, b) for k, a, b in inputs.decisions.distinct if k == kind}
        self.links: list[Link] = []
        self.reviews: list[Review] = []
        self.raised: set[str] = set()

    def usable(self, edge: _Edge) -> bool:
        return (
            edge.left in self.left
            and edge.right in self.right
            and (edge.left, edge.right) not in self.distinct
        )

    def settle(
        self,
        edges: Iterable[_Edge],
        method: Method | None,
        reason: str,
        *,
        single_only: bool = False,
    ) -> None:
        """One-to-one edges link (with ``method``); every larger tangle becomes one review item.

        ``method=None`` asks about every tangle instead of linking; ``single_only`` asks only about
        one-to-one ones (weak evidence with several candidates is not worth a person's time).
        """
        for component in _components([e for e in edges if self.usable(e)]):
            if len(component) == 1 and method is not None:
                self.link(component[0], method)
            elif len(component) == 1 or not single_only:
                self.ask(component, reason)
                self.hold(component)

    def link(self, edge: _Edge, method: Method) -> None:
        score = None if edge.score is None else Decimal(f"{edge.score:.2f}")
        self.links.append(Link(self.kind, edge.left, edge.right, method, score))
        self.hold([edge])

    def hold(self, edges: Iterable[_Edge]) -> None:
        for edge in edges:
            self.left.pop(edge.left, None)
            self.right.pop(edge.right, None)

    def ask(self, edges: Sequence[_Edge], reason: str, *, about_right: bool | None = None) -> None:
        """Raise a question about ``edges`` unless a person dismissed exactly these candidates.

        The subject names one record: the one the question is about (``about_right``), else the
        side with fewer records, else the left; the smallest id of that side.
        """
        lefts = sorted({e.left for e in edges})
        rights = sorted({e.right for e in edges})
        left_name, right_name = self.inputs.left, self.inputs.right
        if about_right is None:
            about_right = len(rights) < len(lefts)
        if about_right:
            anchor, where, other = rights[0], right_name, left_name
        else:
            anchor, where, other = lefts[0], left_name, right_name
        subject = f"{self.kind.value} {where}:{anchor} ~ {other}"
        pairs = tuple(sorted({(e.left, e.right) for e in edges}))
        self.raised.add(subject)
        if set(pairs) <= self.inputs.decisions.dismissed.get(subject, frozenset()):
            return
        records = {f"{left_name}:{i}": self.describe(self.all_left[i]) for i in lefts}
        records |= {f"{right_name}:{i}": self.describe(self.all_right[i]) for i in rights}
        detail = {
            "reason": reason,
            "left": left_name,
            "right": right_name,
            "candidates": [
                {
                    "left": e.left,
                    "right": e.right,
                    "evidence": e.evidence,
                    "score": None if e.score is None else round(e.score, 2),
                }
                for e in sorted(edges, key=lambda e: (e.left, e.right))
            ],
            "records": records,
        }
        self.reviews.append(Review(self.kind, subject, where, pairs, detail))

    def plan(self) -> LinkPlan:
        prefix = f"{self.kind.value} "
        obsolete = sorted(
            s for s in self.inputs.open_subjects if s.startswith(prefix) and s not in self.raised
        )
        return LinkPlan(tuple(self.links), tuple(self.reviews), tuple(obsolete))


def _ext(record: CustomerFacts | InvoiceFacts) -> str:
    return record.external_id


def _components(edges: Sequence[_Edge]) -> list[list[_Edge]]:
    """Connected components of a bipartite edge list, in a deterministic order."""
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(node: tuple[str, str]) -> tuple[str, str]:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    unique = list({(e.left, e.right): e for e in edges}.values())
    for edge in unique:
        a, b = find(("L", edge.left)), find(("R", edge.right))
        if a != b:
            parent[max(a, b)] = min(a, b)
    groups: dict[tuple[str, str], list[_Edge]] = defaultdict(list)
    for edge in unique:
        groups[find(("L", edge.left))].append(edge)
    return sorted(groups.values(), key=lambda g: min((e.left, e.right) for e in g))


K = TypeVar("K", bound=Hashable)


def _key_edges(
    left: Mapping[str, F],
    right: Mapping[str, F],
    left_key: Callable[[F], K | None],
    right_key: Callable[[F], K | None],
    evidence: str,
    score: Callable[[F, F], float | None] = lambda a, b: None,
) -> list[_Edge]:
    """Every (left, right) pair with the same non-None key: a hash join, never all pairs."""
    by_key: dict[K, list[str]] = defaultdict(list)
    for rid, record in right.items():
        value = right_key(record)
        if value is not None:
            by_key[value].append(rid)
    edges = []
    for lid, record in left.items():
        value = left_key(record)
        if value is None:
            continue
        for rid in by_key.get(value, ()):
            edges.append(_Edge(lid, rid, evidence, score(record, right[rid])))
    return edges


# --- customers ----------------------------------------------------------------------------------


def _describe_customer(c: CustomerFacts) -> dict[str, Any]:
    return asdict(c)


def plan_customer_links(inputs: LinkInputs, thresholds: Thresholds = THRESHOLDS) -> LinkPlan:
    """New customer links and questions for the pair ``inputs.left`` / ``inputs.right``."""
    p = _Planner(
        Kind.CUSTOMER,
        inputs,
        inputs.left_customers,
        inputs.right_customers,
        _describe_customer,
    )
    names = {("L", k): normalize_name(c.name) for k, c in p.all_left.items()}
    names |= {("R", k): normalize_name(c.name) for k, c in p.all_right.items()}

    def similarity(a: CustomerFacts, b: CustomerFacts) -> float:
        return name_similarity(names["L", a.external_id], names["R", b.external_id])

    _xref_level(p, similarity)
    p.settle(
        _key_edges(p.left, p.right, _tax_id, _tax_id, "tax_id", similarity),
        Method.EXACT,
        "several customers share this tax id",
    )
    p.settle(
        [
            e
            for e in _key_edges(p.left, p.right, _email, _email, "email", similarity)
            if e.score is not None and e.score >= thresholds.email_name
        ],
        Method.EXACT,
        "several customers share this e-mail and a similar name",
    )
    p.settle(
        _key_edges(
            p.left,
            p.right,
            lambda c: names["L", c.external_id] or None,
            lambda c: names["R", c.external_id] or None,
            "name",
            similarity,
        ),
        Method.EXACT,
        "several customers have this name",
    )
    _fuzzy_level(p, names, thresholds)
    return p.plan()


def _tax_id(c: CustomerFacts) -> str | None:
    return normalize_tax_id(c.tax_id)


def _email(c: CustomerFacts) -> str | None:
    return normalize_email(c.email)


def _xref_level(
    p: _Planner[CustomerFacts], similarity: Callable[[CustomerFacts, CustomerFacts], float]
) -> None:
    """Ids the sources store for each other. A claim on a record linked to another is a question."""
    edges: list[_Edge] = []
    conflicts: list[_Edge] = []  # at this first level, a record outside the pool is linked
    for lid, c in p.left.items():
        if c.xref in p.right:
            edges.append(_Edge(lid, c.xref, "xref", similarity(c, p.right[c.xref])))
        elif c.xref in p.all_right and (lid, c.xref) not in p.distinct:
            conflicts.append(_Edge(lid, c.xref, "xref", similarity(c, p.all_right[c.xref])))
    for rid, d in p.right.items():
        if d.xref in p.left:
            edges.append(_Edge(d.xref, rid, "xref", similarity(p.left[d.xref], d)))
        elif d.xref in p.all_left and (d.xref, rid) not in p.distinct:
            conflicts.append(_Edge(d.xref, rid, "xref", similarity(p.all_left[d.xref], d)))
    for edge in conflicts:
        holder_is_right = edge.right in p.right
        if holder_is_right or edge.left in p.left:  # not held by an earlier conflict
            reason = "the xref points at a record already linked to another"
            p.ask([edge], reason, about_right=holder_is_right)
            p.hold([edge])
    p.settle(edges, Method.XREF, "several customers carry xrefs to the same record")


def _block_keys(name: str) -> set[str]:
    """Keys that a similar name almost surely shares: a word, its first or its last four letters
    (one typo in a name of eight letters or more leaves one of the two intact)."""
    compact = name.replace(" ", "")
    return {word for word in name.split() if len(word) >= 2} | {
        f"^{compact[:4]}",
        f"{compact[-4:]}$",
    }


def _fuzzy_level(
    p: _Planner[CustomerFacts], names: Mapping[tuple[str, str], str], th: Thresholds
) -> None:
    """Similar names. Candidates come from blocks of records sharing a word, a prefix or a suffix,
    so the cost grows with the block sizes, not with left x right."""
    index: dict[str, list[str]] = defaultdict(list)
    for rid in p.right:
        name = names["R", rid]
        if name:
            for key in _block_keys(name):
                index[key].append(rid)
    edges: list[_Edge] = []
    for lid in p.left:
        name = names["L", lid]
        if not name:
            continue
        candidates: set[str] = set()
        for key in _block_keys(name):
            block = index.get(key, ())
            if len(block) <= th.max_block:
                candidates.update(block)
        if not candidates:
            continue
        choices = {rid: names["R", rid] for rid in sorted(candidates)}
        for _, score, rid in process.extract(
            name,
            choices,
            scorer=fuzz.token_sort_ratio,
            processor=None,
            score_cutoff=th.review,
            limit=None,
        ):
            edges.append(_Edge(lid, rid, "similar name", float(score)))
    edges = [e for e in edges if p.usable(e)]
    # Confident links free their records, which can make another best match clear: repeat until
    # nothing changes, so that planning again after applying finds nothing new.
    while True:
        confident = _confident(edges, th)
        if not confident:
            break
        for edge in confident:
            p.link(edge, Method.FUZZY)
        edges = [e for e in edges if p.usable(e)]
    by_left: dict[str, list[_Edge]] = defaultdict(list)
    for edge in edges:
        by_left[edge.left].append(edge)
    for lid in sorted(by_left):
        p.ask(by_left[lid], "similar names, none confidently the same")
    p.hold(edges)


def _confident(edges: Sequence[_Edge], th: Thresholds) -> list[_Edge]:
    """Edges at or above the link threshold that are the clear best on both of their sides."""

    def clear_best(group: dict[str, list[_Edge]]) -> dict[str, _Edge]:
        out = {}
        for key, es in group.items():
            ranked = sorted(es, key=lambda e: -(e.score or 0.0))
            top = ranked[0].score or 0.0
            runner_up = (ranked[1].score or 0.0) if len(ranked) > 1 else None
            if top >= th.link and (runner_up is None or top - runner_up >= th.margin):
                out[key] = ranked[0]
        return out

    by_left: dict[str, list[_Edge]] = defaultdict(list)
    by_right: dict[str, list[_Edge]] = defaultdict(list)
    for edge in edges:
        by_left[edge.left].append(edge)
        by_right[edge.right].append(edge)
    best_right = clear_best(by_right)
    return [
        edge
        for lid, edge in sorted(clear_best(by_left).items())
        if best_right.get(edge.right) == edge
    ]


# --- invoices -----------------------------------------------------------------------------------


def _describe_invoice(i: InvoiceFacts) -> dict[str, Any]:
    return {
        "number": i.number,
        "customer": i.customer_external_id,
        "total": format(i.total, "f"),
        "currency": i.currency,
        "issued_on": i.issued_on.isoformat() if i.issued_on else None,
    }


def plan_invoice_links(inputs: LinkInputs) -> LinkPlan:
    """New invoice links and questions, only between customers the pair has linked."""
    customers = {link.left: link.right for link in inputs.links if link.kind == Kind.CUSTOMER}
    owner = {right: left for left, right in customers.items()}
    p = _Planner(
        Kind.INVOICE,
        inputs,
        [i for i in inputs.left_invoices if i.customer_external_id in customers],
        [i for i in inputs.right_invoices if i.customer_external_id in owner],
        _describe_invoice,
    )

    def keyed(
        key: Callable[[InvoiceFacts], Hashable | None],
    ) -> tuple[
        Callable[[InvoiceFacts], Hashable | None], Callable[[InvoiceFacts], Hashable | None]
    ]:
        """``key`` within one linked customer pair: both sides carry the left customer's id."""

        def left(i: InvoiceFacts) -> Hashable | None:
            value = key(i)
            return None if value is None else (i.customer_external_id, value)

        def right(i: InvoiceFacts) -> Hashable | None:
            value = key(i)
            return None if value is None else (owner[i.customer_external_id], value)

        return left, right

    def digits(i: InvoiceFacts) -> Hashable | None:
        found = invoice_digits_key(i.number)
        return None if found is None else (found, i.currency, i.total)

    def dated(i: InvoiceFacts) -> Hashable | None:
        return None if i.issued_on is None else (i.currency, i.total, i.issued_on)

    levels: list[tuple[Callable[[InvoiceFacts], Hashable | None], str, Method | None, str]] = [
        (
            lambda i: (invoice_number_key(i.number), i.currency, i.total),
            "number and total",
            Method.EXACT,
            "the same invoice number and total appear more than once",
        ),
        (
            digits,
            "number digits and total",
            Method.FUZZY,
            "invoice numbers equal only in their digits, more than once",
        ),
        (
            lambda i: invoice_number_key(i.number),
            "number",
            None,
            "the same invoice number with a different total or currency",
        ),
    ]
    for key, evidence, method, reason in levels:
        p.settle(_key_edges(p.left, p.right, *keyed(key), evidence), method, reason)
    p.settle(
        _key_edges(p.left, p.right, *keyed(dated), "total and issue date"),
        None,
        "renumbered? same customer, total and issue date, different number",
        single_only=True,
    )
    return p.plan()


def plan_links(inputs: LinkInputs, thresholds: Thresholds = THRESHOLDS) -> LinkPlan:
    """Customers first, then invoices between the customers linked before or by this plan."""
    customers = plan_customer_links(inputs, thresholds)
    with_new = LinkInputs(
        left=inputs.left,
        right=inputs.right,
        left_invoices=inputs.left_invoices,
        right_invoices=inputs.right_invoices,
        links=(*inputs.links, *customers.links),
        decisions=inputs.decisions,
        open_subjects=inputs.open_subjects,
    )
    return customers + plan_invoice_links(with_new)


__all__ = [
    "LEGAL_SUFFIXES",
    "THRESHOLDS",
    "CustomerFacts",
    "Decisions",
    "InvoiceFacts",
    "Kind",
    "Link",
    "LinkInputs",
    "LinkPlan",
    "Method",
    "Review",
    "Thresholds",
    "invoice_digits_key",
    "invoice_number_key",
    "name_similarity",
    "normalize_email",
    "normalize_name",
    "normalize_tax_id",
    "plan_customer_links",
    "plan_invoice_links",
    "plan_links",
]
