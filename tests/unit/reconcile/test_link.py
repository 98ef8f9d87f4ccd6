"""The link planner: normalization, the decision table, and what a person decided stays decided."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.reconcile.link import (
    CustomerFacts,
    Decisions,
    InvoiceFacts,
    Kind,
    Link,
    LinkInputs,
    LinkPlan,
    Method,
    invoice_digits_key,
    invoice_number_key,
    normalize_email,
    normalize_name,
    normalize_tax_id,
    plan_customer_links,
    plan_links,
)

C = CustomerFacts
D1 = dt.date(2026, 3, 1)


def inputs(
    left: list[CustomerFacts],
    right: list[CustomerFacts],
    **more: object,
) -> LinkInputs:
    return LinkInputs("cw", "qbo", left, right, **more)  # type: ignore[arg-type]


def pairs(plan: LinkPlan, kind: Kind = Kind.CUSTOMER) -> set[tuple[str, str, Method]]:
    return {(link.left, link.right, link.method) for link in plan.links if link.kind == kind}


def inv(
    ext: str, number: str, customer: str, total: str = "100.00", issued: dt.date | None = D1
) -> InvoiceFacts:
    return InvoiceFacts(ext, number, customer, Decimal(total), "USD", issued)


# --- normalization ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("ACME", "acme"),
        ("The ACME, Inc.", "acme"),
        ("Acme LLC", "acme"),
        ("acme l.l.c.", "acme"),
        ("Acme Pty. Ltd.", "acme"),
        ("Smith & Co.", "smith"),
        ("Johnson & Johnson", "johnson and johnson"),
        ("Johnson and Johnson, Inc", "johnson and johnson"),
        ("O'Brien   Plumbing", "obrien plumbing"),
        ("Smith-Jones Consulting", "smith jones consulting"),
        ("Müller GmbH & Co. KG", "muller"),
        ("Société Générale S.A.", "societe generale"),
        ("The Company", "company"),  # only suffix-like words: kept, never empty
        ("Inc", "inc"),
    ],
)
def test_normalize_name(raw: str, normal: str) -> None:
    assert normalize_name(raw) == normal


def test_normalize_email_and_tax_id() -> None:
    assert normalize_email("  Billing@ACME.com ") == "billing@acme.com"
    assert normalize_email("n/a") is None and normalize_email(None) is None
    assert normalize_tax_id("12-345 6789") == normalize_tax_id("123456789") == "123456789"
    assert normalize_tax_id("gb 123.456.789") == "GB123456789"
    assert normalize_tax_id("N/A") is None and normalize_tax_id("00-0000") is None


def test_invoice_number_keys() -> None:
    # Case, spacing, punctuation and leading zeros never matter ...
    assert invoice_number_key("INV-0042") == invoice_number_key("inv 42") == "inv42"
    # ... a prefix does: "INV-0042" and "42" agree only in their digits (a weaker, fuzzy link).
    assert invoice_number_key("INV-0042") != invoice_number_key("42")
    assert invoice_digits_key("INV-0042") == invoice_digits_key("0042") == "42"
    assert invoice_digits_key("DRAFT") is None


# --- customers: the decision table --------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("Acme Widgets", "ACME WIDGETS"),  # case
        ("Acme Widgets", "Acme-Widgets!"),  # punctuation
        ("Acme Widgets, Inc.", "Acme Widgets LLC"),  # legal suffixes
        ("The Acme Widgets Company", "acme widgets"),
        ("Zoë & Sons", "Zoe and Sons"),  # accents, "&"
    ],
)
def test_names_equal_after_normalizing_link_exactly(left: str, right: str) -> None:
    plan = plan_customer_links(inputs([C("1", left)], [C("A", right)]))
    assert pairs(plan) == {("1", "A", Method.EXACT)}
    assert plan.links[0].score == Decimal("100.00")
    assert plan.reviews == ()


def test_two_customers_with_the_same_name_are_a_question_never_a_guess() -> None:
    plan = plan_customer_links(
        inputs([C("1", "Globex"), C("2", "Globex, Inc.")], [C("A", "GLOBEX LLC")])
    )
    assert plan.links == ()
    (review,) = plan.reviews
    assert review.subject == "customer qbo:A ~ cw"  # asked about the one record, once
    assert review.pairs == (("1", "A"), ("2", "A"))
    assert review.detail["reason"] == "several customers have this name"
    assert set(review.detail["records"]) == {"cw:1", "cw:2", "qbo:A"}


def test_same_name_on_both_sides_twice_is_one_question() -> None:
    plan = plan_customer_links(
        inputs([C("1", "Globex"), C("2", "Globex")], [C("A", "Globex"), C("B", "globex")])
    )
    assert plan.links == ()
    assert [r.pairs for r in plan.reviews] == [(("1", "A"), ("1", "B"), ("2", "A"), ("2", "B"))]


def test_xref_on_either_side_links_first_whatever_the_names() -> None:
    plan = plan_customer_links(
        inputs(
            [C("1", "Acme", xref="A"), C("2", "Initech")],
            [C("A", "Totally Different"), C("B", "Initrode", xref="2"), C("C", "Acme")],
        )
    )
    assert pairs(plan) == {("1", "A", Method.XREF), ("2", "B", Method.XREF)}
    assert plan.reviews == ()  # qbo:C "Acme" stays free: cw:1 is taken by its xref


def test_two_xrefs_claiming_one_record_are_a_question() -> None:
    plan = plan_customer_links(
        inputs([C("1", "Acme", xref="A"), C("2", "Acme East", xref="A")], [C("A", "Acme")])
    )
    assert plan.links == ()
    (review,) = plan.reviews
    assert review.pairs == (("1", "A"), ("2", "A"))
    assert "xref" in review.detail["reason"]


def test_an_xref_to_a_record_linked_to_another_is_a_question() -> None:
    existing = (Link(Kind.CUSTOMER, "9", "A", Method.MANUAL),)
    plan = plan_customer_links(
        inputs(
            [C("1", "Acme", xref="A"), C("9", "Acme Holdings")], [C("A", "Acme")], links=existing
        )
    )
    assert plan.links == ()
    (review,) = plan.reviews
    assert review.subject == "customer cw:1 ~ qbo"
    assert review.detail["reason"] == "the xref points at a record already linked to another"


def test_two_xrefs_at_one_linked_record_are_two_questions_about_their_holders() -> None:
    existing = (Link(Kind.CUSTOMER, "9", "A", Method.EXACT),)
    plan = plan_customer_links(
        inputs(
            [C("9", "Acme")],
            [C("A", "Acme"), C("B", "Acme East", xref="9"), C("C", "Acme West", xref="9")],
            links=existing,
        )
    )
    assert plan.links == ()
    assert [r.subject for r in plan.reviews] == ["customer qbo:B ~ cw", "customer qbo:C ~ cw"]


def test_tax_id_links_different_names_and_a_shared_one_is_a_question() -> None:
    plan = plan_customer_links(
        inputs(
            [C("1", "Acme Widgets", tax_id="12-3456789"), C("2", "Foo", tax_id="98-7654321")],
            [
                C("A", "ACME Holdings", tax_id="123456789"),
                C("B", "Foo East", tax_id="987654321"),
                C("C", "Foo West", tax_id="987654321"),
            ],
        )
    )
    assert pairs(plan) == {("1", "A", Method.EXACT)}
    assert [r.pairs for r in plan.reviews] == [(("2", "B"), ("2", "C"))]


def test_email_links_only_similar_names() -> None:
    plan = plan_customer_links(
        inputs(
            [C("1", "Acme Widget Co", email="ap@acme.com"), C("2", "Zeta", email="ap@msp.com")],
            [C("A", "Acme Widgets", email="AP@acme.com"), C("B", "Omega", email="ap@msp.com")],
        )
    )
    assert pairs(plan) == {("1", "A", Method.EXACT)}
    assert plan.reviews == ()  # one billing mailbox for two unrelated clients proves nothing


def test_fuzzy_link_needs_a_high_score_and_a_clear_winner() -> None:
    plan = plan_customer_links(
        inputs(
            [C("1", "Contoso Pharmaceuticals"), C("2", "Litware Consulting")],
            [C("A", "Contosso Pharmaceuticals"), C("B", "Litware Consultancy")],
        )
    )
    assert pairs(plan) == {("1", "A", Method.FUZZY)}
    link = plan.links[0]
    assert link.score is not None and Decimal(92) <= link.score < Decimal(100)
    (review,) = plan.reviews  # 80..92: a person decides
    assert review.pairs == (("2", "B"),)
    assert review.detail["candidates"][0]["evidence"] == "similar name"


def test_two_close_fuzzy_candidates_are_never_guessed() -> None:
    plan = plan_customer_links(
        inputs(
            [C("1", "Northwind Traders")],
            [C("A", "Northwind Trader"), C("B", "Northwind Tradres")],
        )
    )
    assert plan.links == ()
    assert [r.pairs for r in plan.reviews] == [(("1", "A"), ("1", "B"))]


def test_a_confident_link_can_make_the_next_best_clear() -> None:
    # cw:2 is closer to qbo:A than to qbo:B, but qbo:A is clearly cw:1's: so cw:2 is qbo:B.
    plan = plan_customer_links(
        inputs(
            [C("1", "Wingtip Toys Ltd"), C("2", "Wingtip Toyz Inc")],
            [C("A", "Wingtip Toys"), C("B", "Wingtipp Toyz")],
        )
    )
    assert pairs(plan) == {("1", "A", Method.EXACT), ("2", "B", Method.FUZZY)}


def test_ids_repeated_across_sides_are_not_confused() -> None:
    plan = plan_customer_links(inputs([C("1", "Acme"), C("2", "Globex")], [C("2", "Acme")]))
    assert pairs(plan) == {("1", "2", Method.EXACT)}


# --- what people decided ------------------------------------------------------------------------


def test_existing_links_are_left_alone() -> None:
    existing = (Link(Kind.CUSTOMER, "1", "B", Method.MANUAL),)
    plan = plan_customer_links(
        inputs(
            [C("1", "Acme"), C("2", "Globex")], [C("A", "Acme"), C("B", "Globex")], links=existing
        )
    )
    assert plan.links == () and plan.reviews == ()


def test_a_distinct_pair_is_never_linked_nor_asked_again() -> None:
    decided = Decisions(distinct=frozenset({(Kind.CUSTOMER, "1", "A")}))
    plan = plan_customer_links(
        inputs(
            [C("1", "Acme", xref="A", tax_id="123456")],
            [C("A", "Acme", tax_id="123456")],
            decisions=decided,
        )
    )
    assert plan == LinkPlan()


def test_unlinking_one_of_two_same_names_lets_the_other_link() -> None:
    decided = Decisions(distinct=frozenset({(Kind.CUSTOMER, "1", "A")}))
    plan = plan_customer_links(
        inputs([C("1", "Globex"), C("2", "Globex")], [C("A", "Globex")], decisions=decided)
    )
    assert pairs(plan) == {("2", "A", Method.EXACT)}


def test_a_dismissed_question_returns_only_with_a_new_candidate() -> None:
    subject = "customer qbo:A ~ cw"
    decided = Decisions(dismissed={subject: frozenset({("1", "A"), ("2", "A")})})
    same = inputs([C("1", "Globex"), C("2", "Globex")], [C("A", "Globex")], decisions=decided)
    assert plan_customer_links(same).reviews == ()
    grown = replace(same, left_customers=[*same.left_customers, C("3", "Globex")])
    assert [r.subject for r in plan_customer_links(grown).reviews] == [subject]


def test_an_open_question_that_no_longer_arises_is_obsolete() -> None:
    plan = plan_customer_links(
        inputs(
            [C("1", "Globex")],
            [C("A", "Globex")],
            open_subjects=frozenset({"customer qbo:A ~ cw", "invoice cw:7 ~ qbo"}),
        )
    )
    assert pairs(plan) == {("1", "A", Method.EXACT)}
    assert plan.obsolete == ("customer qbo:A ~ cw",)  # invoices are the invoice planner's


# --- invoices -----------------------------------------------------------------------------------


def invoice_inputs(left: list[InvoiceFacts], right: list[InvoiceFacts]) -> LinkInputs:
    return LinkInputs(
        "cw",
        "qbo",
        [C("1", "Acme"), C("2", "Globex")],
        [C("A", "Acme"), C("B", "Globex")],
        left,
        right,
    )


def test_invoices_link_by_number_and_total_within_linked_customers() -> None:
    plan = plan_links(
        invoice_inputs(
            [inv("i1", "INV-0042", "1"), inv("i2", "43", "1", "50"), inv("i3", "7", "2")],
            [inv("x1", "inv 42", "A"), inv("x2", "INV-43", "A", "50"), inv("x3", "7", "A")],
        )
    )
    assert pairs(plan, Kind.INVOICE) == {("i1", "x1", Method.EXACT), ("i2", "x2", Method.FUZZY)}
    # invoice 7 of Globex is not invoice 7 of Acme, and an invoice of an unlinked customer waits


def test_invoices_of_unlinked_customers_are_not_matched() -> None:
    plan = plan_links(
        LinkInputs(
            "cw",
            "qbo",
            [C("1", "Acme")],
            [C("A", "Zeta")],
            [inv("i1", "1", "1")],
            [inv("x1", "1", "A")],
        )
    )
    assert pairs(plan, Kind.INVOICE) == set()


def test_a_renumbered_invoice_is_a_question_not_a_link() -> None:
    plan = plan_links(
        invoice_inputs([inv("i1", "INV-1001", "1", "250.00")], [inv("x9", "PSA-77", "A", "250")])
    )
    assert pairs(plan, Kind.INVOICE) == set()
    (review,) = [r for r in plan.reviews if r.kind == Kind.INVOICE]
    assert review.subject == "invoice cw:i1 ~ qbo"
    assert review.detail["reason"].startswith("renumbered?")
    assert review.detail["records"]["qbo:x9"]["total"] == "250"


def test_renumbered_needs_a_single_candidate_and_a_date() -> None:
    many = plan_links(
        invoice_inputs([inv("i1", "1", "1")], [inv("x1", "8", "A"), inv("x2", "9", "A")])
    )
    undated = plan_links(invoice_inputs([inv("i1", "1", "1", issued=None)], [inv("x1", "8", "A")]))
    assert [r for r in many.reviews + undated.reviews if r.kind == Kind.INVOICE] == []


def test_same_number_with_another_total_is_a_question() -> None:
    plan = plan_links(
        invoice_inputs([inv("i1", "1001", "1", "250")], [inv("x1", "1001", "A", "240")])
    )
    assert pairs(plan, Kind.INVOICE) == set()
    (review,) = [r for r in plan.reviews if r.kind == Kind.INVOICE]
    assert review.detail["reason"] == "the same invoice number with a different total or currency"


def test_a_duplicated_invoice_number_is_a_question() -> None:
    plan = plan_links(
        invoice_inputs([inv("i1", "5", "1"), inv("i2", "05", "1")], [inv("x1", "5", "A")])
    )
    assert pairs(plan, Kind.INVOICE) == set()
    assert [r.pairs for r in plan.reviews if r.kind == Kind.INVOICE] == [
        (("i1", "x1"), ("i2", "x1"))
    ]


# --- properties ---------------------------------------------------------------------------------

IDS = ["1", "2", "3", "4", "5"]  # the same ids on both sides: sides must never be confused
NAMES = ["Acme", "ACME Inc.", "acme, llc", "Globex", "Globex Corp", "Globx", "Initech", "Hooli"]


def customers_st() -> st.SearchStrategy[list[CustomerFacts]]:
    customer = st.builds(
        CustomerFacts,
        external_id=st.sampled_from(IDS),
        name=st.sampled_from(NAMES),
        email=st.sampled_from([None, "ap@acme.com", "ap@msp.com"]),
        tax_id=st.sampled_from([None, None, "12-3456", "98-7654"]),
        xref=st.sampled_from([None, None, *IDS]),
    )
    return st.lists(customer, max_size=6, unique_by=lambda c: c.external_id)


def invoices_st() -> st.SearchStrategy[list[InvoiceFacts]]:
    invoice = st.builds(
        InvoiceFacts,
        external_id=st.sampled_from([f"i{n}" for n in range(8)]),
        number=st.sampled_from(["INV-1", "1", "2", "0002", "3"]),
        customer_external_id=st.sampled_from(IDS),
        total=st.sampled_from([Decimal("10"), Decimal("10.00"), Decimal("20")]),
        currency=st.just("USD"),
        issued_on=st.sampled_from([None, D1]),
    )
    return st.lists(invoice, max_size=6, unique_by=lambda i: i.external_id)


def one_to_one(kind: Kind, raw: list[tuple[str, str]]) -> tuple[Link, ...]:
    lefts: set[str] = set()
    rights: set[str] = set()
    out = []
    for a, b in raw:
        if a not in lefts and b not in rights:
            lefts.add(a)
            rights.add(b)
            out.append(Link(kind, a, b, Method.MANUAL))
    return tuple(out)


@st.composite
def link_inputs(draw: st.DrawFn) -> LinkInputs:
    id_pairs = st.lists(st.tuples(st.sampled_from(IDS), st.sampled_from(IDS)), max_size=3)
    manual = one_to_one(Kind.CUSTOMER, draw(id_pairs))
    distinct = frozenset((Kind.CUSTOMER, a, b) for a, b in draw(id_pairs))
    return LinkInputs(
        "cw",
        "qbo",
        draw(customers_st()),
        draw(customers_st()),
        draw(invoices_st()),
        draw(invoices_st()),
        links=manual,
        decisions=Decisions(distinct=distinct),
    )


@settings(max_examples=120, deadline=None)
@given(link_inputs())
def test_planning_after_applying_finds_nothing_new(given_inputs: LinkInputs) -> None:
    first = plan_links(given_inputs)
    asked = frozenset(r.subject for r in first.reviews)
    again = replace(given_inputs, links=(*given_inputs.links, *first.links), open_subjects=asked)
    second = plan_links(again)
    assert second.links == ()
    assert {r.subject for r in second.reviews} == asked
    assert second.obsolete == ()


@settings(max_examples=120, deadline=None)
@given(link_inputs())
def test_a_persons_decisions_are_never_overridden(given_inputs: LinkInputs) -> None:
    plan = plan_links(given_inputs)
    for kind in Kind:
        existing = [link for link in given_inputs.links if link.kind == kind]
        new = [link for link in plan.links if link.kind == kind]
        taken_left = {link.left for link in existing}
        taken_right = {link.right for link in existing}
        for link in new:
            assert (kind, link.left, link.right) not in given_inputs.decisions.distinct
            assert link.left not in taken_left and link.right not in taken_right
        everything = existing + new  # and the result stays one-to-one
        assert len({link.left for link in everything}) == len(everything)
        assert len({link.right for link in everything}) == len(everything)
