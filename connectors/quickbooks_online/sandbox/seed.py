"""Deterministic seed data for the QBO emulator, written through the same rules as the API.

Every record is created by ``Company.create``/``update``/``void``/``delete`` with an explicit
historical instant, so the seeded company obeys the invariants the API enforces (balances,
``LinkedTxn``, deposits, SyncTokens) and a test can reason about it as about any QBO company.

Instants are whole seconds relative to the clock at construction (so the 30-day CDC window always
holds recent changes and tombstones). What is in it, per default size (40 customers, 120
invoices): awkward names (``AWKWARD_NAMES``: quotes, apostrophes, backslashes, ``%``/``_``,
unicode), inactive customers, open, partially paid, fully paid (one or two instalments, real
Payment records), voided and deleted invoices, a two-invoice payment, card payments sitting in
Undeposited Funds and deposited with a negative Merchant Fees line, cheques deposited straight to
the bank. The chart of accounts holds Undeposited Funds, Checking, Savings, A/R, income accounts
and Merchant Fees; payment methods are QBO's defaults (Cash, Check, Visa, …).
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from connectors.quickbooks_online.sandbox.common import CENT, Row
from connectors.quickbooks_online.sandbox.entities import HOME_CURRENCY, UNDEPOSITED_FUNDS, Company
from syncd.sandbox.data import AWKWARD_NAMES, SeededData

# (Name, Classification, AccountType, AccountSubType) — QBO account types (PQB objects/account.py)
ACCOUNTS: tuple[tuple[str, str, str, str], ...] = (
    ("Checking", "Asset", "Bank", "Checking"),
    ("Savings", "Asset", "Bank", "Savings"),
    (UNDEPOSITED_FUNDS, "Asset", "Other Current Asset", "UndepositedFunds"),
    ("Accounts Receivable (A/R)", "Asset", "Accounts Receivable", "AccountsReceivable"),
    ("Services", "Revenue", "Income", "ServiceFeeIncome"),
    ("Sales of Product Income", "Revenue", "Income", "SalesOfProductIncome"),
    ("Merchant Fees", "Expense", "Expense", "BankCharges"),
    ("QuickBooks Payments Fees", "Expense", "Expense", "BankCharges"),  # research §1.6
)
PAYMENT_METHODS: tuple[tuple[str, str], ...] = (
    ("Cash", "NON_CREDIT_CARD"),
    ("Check", "NON_CREDIT_CARD"),
    ("Visa", "CREDIT_CARD"),
    ("MasterCard", "CREDIT_CARD"),
    ("American Express", "CREDIT_CARD"),
    ("Discover", "CREDIT_CARD"),
    ("Diners Club", "CREDIT_CARD"),
)
ITEMS: tuple[tuple[str, str], ...] = (
    ("Services", "Service"),
    ("Managed Services", "Service"),
    ("Hours", "Service"),
    ("Hardware", "NonInventory"),
)
CARD_FEE_RATE = Decimal("0.029")
CARD_FEE_FIXED = Decimal("0.30")


def card_fee(amount: Decimal) -> Decimal:
    return (amount * CARD_FEE_RATE + CARD_FEE_FIXED).quantize(CENT, rounding=ROUND_HALF_UP)


def _list_row(
    company: Company, entity: str, fields: Row, at: dt.datetime, rid: int | None = None
) -> Row:
    rid = rid if rid is not None else company.next_id(entity)
    row: Row = {"Id": str(rid), "SyncToken": "0", "domain": "QBO", "sparse": False, **fields}
    company.touch(row, at, created=True)
    company.put(entity, row, None, at)
    return row


def _seed_lists(company: Company, at: dt.datetime, realm_id: str) -> None:
    for name, classification, kind, sub in ACCOUNTS:
        _list_row(
            company,
            "Account",
            {
                "Name": name,
                "SubAccount": False,
                "FullyQualifiedName": name,
                "Active": True,
                "Classification": classification,
                "AccountType": kind,
                "AccountSubType": sub,
                "CurrentBalance": 0,
                "CurrentBalanceWithSubAccounts": 0,
                "CurrencyRef": HOME_CURRENCY,
            },
            at,
        )
    for name, kind in PAYMENT_METHODS:
        _list_row(company, "PaymentMethod", {"Name": name, "Active": True, "Type": kind}, at)
    income = company.find("Account", Name="Services")
    assert income is not None
    for name, kind in ITEMS:
        _list_row(
            company,
            "Item",
            {
                "Name": name,
                "FullyQualifiedName": name,
                "Active": True,
                "Type": kind,
                "Taxable": False,
                "UnitPrice": 0,
                "IncomeAccountRef": {"value": income["Id"], "name": income["Name"]},
                "TrackQtyOnHand": False,
            },
            at,
        )
    _list_row(
        company,
        "CompanyInfo",
        {
            "CompanyName": "Sandbox Company_US_1",
            "LegalName": "Sandbox Company_US_1",
            "CompanyAddr": {"Line1": "123 Sierra Way", "City": "San Pablo", "PostalCode": "87999"},
            "Country": "US",
            "Email": {"Address": "noreply@quickbooks.com"},
            "FiscalYearStartMonth": "January",
            "SupportedLanguages": "en",
            "DefaultTimeZone": "America/Los_Angeles",
        },
        at,
        # CompanyInfo's Id is the realm id: GET …/companyinfo/{realmId} (PQB CompanyInfo.get)
        int(realm_id) if realm_id.isdigit() else None,
    )


class _Seeder:
    def __init__(self, company: Company, seed: int) -> None:
        self.c = company
        self.d = SeededData(seed)
        self.rng = self.d.rng
        self.now = company.now().replace(microsecond=0)
        self.ids: dict[str, int] = {}
        self.touched: dict[int, dt.datetime] = {}  # customer -> last activity
        self.bounced: set[int] = set()  # voided payments: never deposited

    def secs(self, low: float, high: float) -> dt.timedelta:
        return dt.timedelta(seconds=self.rng.randint(int(low), int(high)))

    def cap(self, at: dt.datetime) -> dt.datetime:
        return min(at, self.now - dt.timedelta(seconds=1))

    def run(self, n_customers: int, n_invoices: int) -> None:
        c = self.c
        for name in ("Checking", UNDEPOSITED_FUNDS, "Merchant Fees"):
            self.ids[name] = c.account_id(name)
        for row in c.tables["PaymentMethod"].rows.values():
            self.ids[row["Name"]] = int(row["Id"])
        customers = self.customers(n_customers)
        if customers:
            card_payments = self.invoices(n_invoices, customers)
            self.deposits(card_payments)
        self.deactivate(customers)

    # -- customers -------------------------------------------------------------------------------

    def customers(self, n: int) -> list[int]:
        d, rng = self.d, self.rng
        ids: list[int] = []
        day = 86_400
        for i in range(n):
            if i < 2 * len(AWKWARD_NAMES) and i % 2 == 1:
                name = AWKWARD_NAMES[i // 2]
            else:
                name = d.company_name()
            base, k = name, 2
            while name.casefold() in self.c.display_names:
                name, k = f"{base} #{k}", k + 1
            first, last = d.person(awkward=i % 9 == 3)
            body: Row = {
                "DisplayName": name,
                "CompanyName": name,
                "GivenName": first,
                "FamilyName": last,
                "PrimaryPhone": {"FreeFormNumber": f"(555) 01{rng.randint(0, 99):02d}-{i:04d}"},
                "BillAddr": {
                    "Id": str(1000 + i),
                    "Line1": f"{rng.randint(1, 9999)} Main St",
                    "City": "Springfield",
                    "CountrySubDivisionCode": "IL",
                    "PostalCode": "62701",
                },
            }
            if i % 11 != 10:  # some customers have no e-mail at all
                body["PrimaryEmailAddr"] = {"Address": d.email(f"{first} {last}", name)}
            created = self.now - self.secs(400 * day, 800 * day)
            row = self.c.create("Customer", body, at=created)
            cid = int(row["Id"])
            if i % 4 == 0:  # edited since: SyncToken 1, recent LastUpdatedTime for some
                when = self.cap(self.now - self.secs(0, 60 * day))
                self.c.save(
                    "Customer",
                    {
                        "Id": row["Id"],
                        "SyncToken": row["SyncToken"],
                        "sparse": True,
                        "Notes": "Net 30, statements monthly",
                    },
                    at=when,
                )
            ids.append(cid)
        return ids

    def deactivate(self, customers: list[int]) -> None:
        for i, cid in enumerate(customers):
            if i % 9 != 5:
                continue
            row = self.c.tables["Customer"].rows[cid]
            when = self.now - self.secs(3_600, 20 * 86_400)
            when = self.cap(max(when, self.touched.get(cid, when) + dt.timedelta(seconds=1)))
            self.c.save(
                "Customer",
                {"Id": row["Id"], "SyncToken": row["SyncToken"], "sparse": True, "Active": False},
                at=when,
            )

    # -- invoices & payments ---------------------------------------------------------------------

    def invoices(self, n: int, customers: list[int]) -> list[tuple[dt.datetime, int, Decimal]]:
        d, rng, c = self.d, self.rng, self.c
        day = 86_400
        items = sorted(c.tables["Item"].rows)
        card_payments: list[tuple[dt.datetime, int, Decimal]] = []
        plans: list[tuple[str, int, Row, dt.datetime]] = []
        for j in range(n):
            cid = rng.choice(customers)
            if j % 30 == 17 and plans and plans[-1][0] == "open":
                cid = plans[-1][1]  # same customer: one payment will settle both
            created = self.cap(self.now - self.secs(day, 365 * day))
            lines: list[Row] = []
            subtotal = Decimal(0)
            for _ in range(1 + (j % 3 == 0) + (j % 5 == 0)):
                qty = rng.randint(1, 10)
                price = d.money(25, 250)
                subtotal += qty * price
                lines.append(
                    {
                        "Description": rng.choice(
                            ("Monthly managed services", "Onsite support", "Backup & DR", "Labor")
                        ),
                        "Amount": str(qty * price),
                        "DetailType": "SalesItemLineDetail",
                        "SalesItemLineDetail": {
                            "ItemRef": {"value": str(rng.choice(items))},
                            "Qty": qty,
                            "UnitPrice": str(price),
                        },
                    }
                )
            body: Row = {
                "CustomerRef": {"value": str(cid)},
                "Line": lines,
                "TxnDate": created.astimezone(c.tz).date().isoformat(),
                "CustomerMemo": {"value": "Thank you for your business."},
            }
            if j % 6 == 1:
                body["TxnTaxDetail"] = {
                    "TotalTax": str((subtotal * Decimal("0.08")).quantize(CENT))
                }
            customer = c.tables["Customer"].rows[cid]
            if "PrimaryEmailAddr" in customer:
                body["BillEmail"] = dict(customer["PrimaryEmailAddr"])
            invoice = c.create("Invoice", body, at=created)
            last = created
            if j % 7 == 6:
                last = created + dt.timedelta(hours=1)
                invoice = c.save(
                    "Invoice",
                    {
                        "Id": invoice["Id"],
                        "SyncToken": invoice["SyncToken"],
                        "sparse": True,
                        "EmailStatus": "EmailSent",
                    },
                    at=last,
                )
            total = Decimal(str(invoice["TotalAmt"]))
            bucket = j % 10
            plan = "open"
            amounts: list[Decimal] = []
            if bucket in (0, 1):
                plan = "paid"
                if j % 20 == 0:
                    first = (total / 3).quantize(CENT)
                    amounts = [first, total - first]
                else:
                    amounts = [total]
            elif bucket in (2, 3):
                plan = "partial"
                pct = Decimal(rng.choice([25, 40, 50, 75]))
                amounts = [(total * pct / 100).quantize(CENT)]
            elif j % 20 == 5:
                plan = "void"
            elif j % 25 == 13:
                plan = "delete"
            elif j % 30 == 17 and plans and plans[-1][0] == "open" and plans[-1][1] == cid:
                plan = "pair"
            when = last
            for k, amount in enumerate(amounts):
                when = self.cap(when + self.secs(day, (30 if k == 0 else 10) * day))
                payment = self.pay(j + k, cid, [(invoice["Id"], amount)], when, card_payments)
                if j % 40 == 2:  # a bounced payment, voided: the invoice is open again
                    when = self.cap(when + dt.timedelta(days=1))
                    c.void("Payment", payment, when)
                    self.bounced.add(int(payment["Id"]))
            if plan == "void":
                when = self.cap(last + self.secs(3_600, 10 * day))
                c.void("Invoice", {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]}, when)
            elif plan == "delete":
                when = self.cap(
                    max(last + dt.timedelta(hours=2), self.now - self.secs(0, 20 * day))
                )
                c.delete("Invoice", {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]}, when)
            elif plan == "pair":
                _, _, previous, prev_last = plans[-1]
                when = self.cap(max(last, prev_last) + self.secs(day, 20 * day))
                pairs = [
                    (previous["Id"], Decimal(str(previous["TotalAmt"]))),
                    (invoice["Id"], total),
                ]
                self.pay(j, cid, pairs, when, card_payments)
            self.touched[cid] = max(self.touched.get(cid, when), when)
            plans.append((plan, cid, invoice, last))
        return card_payments

    def pay(
        self,
        j: int,
        cid: int,
        applications: list[tuple[str, Decimal]],
        when: dt.datetime,
        card_payments: list[tuple[dt.datetime, int, Decimal]],
    ) -> Row:
        total = sum((amount for _, amount in applications), Decimal(0))
        body: dict[str, Any] = {
            "CustomerRef": {"value": str(cid)},
            "TotalAmt": str(total),
            "TxnDate": when.astimezone(self.c.tz).date().isoformat(),
            "Line": [
                {"Amount": str(amount), "LinkedTxn": [{"TxnId": iid, "TxnType": "Invoice"}]}
                for iid, amount in applications
            ],
        }
        card = j % 3 != 0
        if card:
            method = self.rng.choice(("Visa", "MasterCard", "American Express"))
            body["DepositToAccountRef"] = {"value": str(self.ids[UNDEPOSITED_FUNDS])}
            body["PrivateNote"] = f"Card payment ch_{self.d.token(14)}"
        else:
            method = "Check"
            body["DepositToAccountRef"] = {"value": str(self.ids["Checking"])}
            body["PaymentRefNum"] = str(2000 + j)
        body["PaymentMethodRef"] = {"value": str(self.ids[method])}
        payment = self.c.create("Payment", body, at=when)
        if card:
            card_payments.append((when, int(payment["Id"]), total))
        return payment

    # -- deposits --------------------------------------------------------------------------------

    def deposits(self, card_payments: list[tuple[dt.datetime, int, Decimal]]) -> None:
        """Card payouts: one or two payments per deposit, gross lines plus one negative fee line
        (research §1.6 pattern A); the newest payments stay in Undeposited Funds."""
        card_payments = sorted(p for p in card_payments if p[1] not in self.bounced)
        k, n = 0, 0
        while k < len(card_payments):
            size = 2 if n % 3 == 2 else 1  # payouts of one, one, then two payments
            batch = card_payments[k : k + size]
            k, n = k + size, n + 1
            when = batch[-1][0] + dt.timedelta(days=2)
            if when >= self.now:
                break
            fee = sum((card_fee(amount) for _, _, amount in batch), Decimal(0))
            lines: list[Row] = [
                {"Amount": str(amount), "LinkedTxn": [{"TxnId": str(pid), "TxnType": "Payment"}]}
                for _, pid, amount in batch
            ]
            lines.append(
                {
                    "Amount": str(-fee),
                    "DetailType": "DepositLineDetail",
                    "Description": "Processing fees",
                    "DepositLineDetail": {
                        "AccountRef": {"value": str(self.ids["Merchant Fees"])},
                    },
                }
            )
            self.c.create(
                "Deposit",
                {
                    "DepositToAccountRef": {"value": str(self.ids["Checking"])},
                    "TxnDate": when.astimezone(self.c.tz).date().isoformat(),
                    "PrivateNote": "Card payout",
                    "Line": lines,
                },
                at=when,
            )


def seed_company(
    company: Company, *, seed: int, customers: int, invoices: int, realm_id: str = "1"
) -> None:
    """Fill an empty company; change events are not recorded for seed data."""
    company.recording = False
    try:
        start = company.now().replace(microsecond=0) - dt.timedelta(days=900)
        _seed_lists(company, start, realm_id)
        _Seeder(company, seed).run(customers, invoices)
    finally:
        company.recording = True
        company.events.clear()


__all__ = [
    "ACCOUNTS",
    "CARD_FEE_FIXED",
    "CARD_FEE_RATE",
    "ITEMS",
    "PAYMENT_METHODS",
    "card_fee",
    "seed_company",
]
