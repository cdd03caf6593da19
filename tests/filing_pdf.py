"""How a quarterly report of tests/filings.py is laid out: its figures, drawn the same on every
run, and its pages (reportlab platypus: paragraphs, and tables for the statements)."""

import io
import random

from tests.filings import EVENTS, RISKS, Company, Quarter


def figures(c: Company, number: int, year: int) -> dict[str, int]:
    """One quarter's figures, in thousands (of dollars, of shares), the same on every run."""
    rng = random.Random(f"{c.key}-{year}-{number}")
    revenue = c.revenue * (1.03 ** (number - 1)) * 0.91 ** (2024 - year)
    revenue *= rng.uniform(0.97, 1.03)
    cost = revenue * (1 - c.margin + rng.uniform(-0.02, 0.02))
    # Operating expenses grew faster than revenue in every quarter: each MD&A explains why.
    opex = revenue * c.margin * rng.uniform(0.62, 0.72) * 0.9 ** (2024 - year)
    research, selling = opex * rng.uniform(0.3, 0.36), opex * rng.uniform(0.4, 0.46)
    general = opex - research - selling
    operating = revenue - cost - research - selling - general
    interest = revenue * rng.uniform(0.005, 0.02)
    other = revenue * rng.uniform(-0.005, 0.01)
    pretax = operating - interest + other
    tax = pretax * rng.uniform(0.19, 0.25)
    shares = c.revenue * rng.uniform(0.09, 0.11) * (0.99**number)
    split = [rng.uniform(0.45, 0.55), rng.uniform(0.25, 0.33)]
    split.append(1 - sum(split))
    values = {
        "revenue": revenue, "cost": cost, "gross": revenue - cost, "research": research,
        "selling": selling, "general": general, "operating": operating, "interest": interest,
        "other": other, "pretax": pretax, "tax": tax, "net": pretax - tax, "shares": shares,
        "diluted": shares * 1.02, "sbc": revenue * rng.uniform(0.02, 0.06),
        "cash": c.revenue * rng.uniform(0.5, 0.9), "investments": c.revenue * rng.uniform(0.1, 0.4),
        "receivables": revenue * rng.uniform(0.5, 0.7),
        "inventory": revenue * rng.uniform(0.6, 0.9) if c.inventory else 0,
        "ppe": c.revenue * rng.uniform(1.5, 3.0), "goodwill": c.revenue * rng.uniform(0.8, 1.2),
        "debt": c.revenue * rng.uniform(1.0, 2.0), "deferred": revenue * rng.uniform(0.1, 0.9),
        "payables": revenue * rng.uniform(0.2, 0.35), "capex": revenue * rng.uniform(0.04, 0.2),
        "repurchased": shares * rng.uniform(0.005, 0.015), "price": rng.uniform(40, 160),
    }  # fmt: skip
    for n, share in enumerate(split):
        values[f"segment{n}"] = revenue * share
        values[f"segment{n}_income"] = operating * share * rng.uniform(0.8, 1.2)
    return {key: round(value) for key, value in values.items()}


def money(thousands: float) -> str:
    return f"${thousands / 1000:,.1f} million"


def cell(value: int) -> str:
    return f"({-value:,})" if value < 0 else f"{value:,}"


def change(now: int, before: int) -> str:
    ratio = now / before - 1 if before else 0
    return f"{'an increase' if ratio >= 0 else 'a decrease'} of {abs(ratio):.0%}"


def filing_pdf(c: Company, q: Quarter) -> bytes:
    from reportlab.lib.pagesizes import letter
    from reportlab.platypus import SimpleDocTemplate

    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer, pagesize=letter, invariant=1, title=f"{c.name} Form 10-Q", author=c.name
    )

    def footer(canvas, doc) -> None:  # real filings number their pages, and little else
        canvas.setFont("Helvetica", 8)
        canvas.drawCentredString(letter[0] / 2, 30, str(doc.page))

    document.build(Report(c, q).flowables(), onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()


class Report:
    """The flowables of one filing, section by section."""

    def __init__(self, c: Company, q: Quarter) -> None:
        from reportlab.lib.styles import getSampleStyleSheet

        self.c, self.q = c, q
        self.now = figures(c, q.number, q.year)
        self.before = figures(c, q.number, q.year - 1)
        self.ytd = [figures(c, n, q.year) for n in range(1, q.number + 1)]
        self.ytd_before = [figures(c, n, q.year - 1) for n in range(1, q.number + 1)]
        self.last = q.year - 1  # the comparative year, and the annual report's
        self.styles = getSampleStyleSheet()
        self.story: list = []

    def flowables(self) -> list:
        for section in (
            self.cover, self.contents, self.operations, self.balance_sheet, self.cash_flows,
            self.notes, self.mdna, self.market_risk, self.part_two,
        ):  # fmt: skip
            section()
            self.page_break()
        return self.story[:-1]

    # helpers
    def para(self, text: str, style: str = "BodyText") -> None:
        from reportlab.platypus import Paragraph

        self.story.append(Paragraph(text.replace("&", "&amp;"), self.styles[style]))

    def heading(self, text: str) -> None:
        self.para(text, "Heading3")

    def page_break(self) -> None:
        from reportlab.platypus import PageBreak

        self.story.append(PageBreak())

    def table(self, header: list[list[str]], rows: list[list[str]]) -> None:
        from reportlab.lib import colors
        from reportlab.platypus import Spacer, Table, TableStyle

        top = len(header)
        width = [200] + [75] * (len(rows[0]) - 1)
        grid = Table([*header, *rows], colWidths=width, repeatRows=top)
        grid.setStyle(
            TableStyle(
                [
                    ("FONT", (0, 0), (-1, -1), "Helvetica", 8),
                    ("FONT", (0, 0), (-1, top - 1), "Helvetica-Bold", 8),
                    ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
                    ("LINEBELOW", (0, top - 1), (-1, top - 1), 0.5, colors.black),
                    ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.whitesmoke]),
                ]
            )
        )
        self.story += [grid, Spacer(1, 10)]

    @property
    def months(self) -> str:
        return {1: "Three", 2: "Six", 3: "Nine"}[self.q.number]

    @property
    def periods(self) -> str:
        return f"three months ended {self.q.ended}"

    def columns(self) -> list[list[str]]:
        """Two header rows, as filings have them: the period, then the years."""
        months = {1: "", 2: "Six", 3: "Nine"}[self.q.number]
        periods = ["", f"Three months ended {self.q.end},", ""]
        if months:
            periods += [f"{months} months ended {self.q.end},", ""]
        return [periods, [""] + [str(self.q.year), str(self.last)] * (len(periods) // 2)]

    def values(self, key: str, share: float = 1.0) -> list[str]:
        """A row's figures: the quarter and a year earlier, then the year to date and before."""
        periods = [[self.now], [self.before]]
        if self.q.number > 1:
            periods += [self.ytd, self.ytd_before]
        average = key in ("shares", "diluted")  # a weighted average, not a sum
        row = []
        for quarters in periods:
            total = sum(f[key] for f in quarters) * share
            row.append(cell(round(total / len(quarters) if average else total)))
        return row

    # sections
    def cover(self) -> None:
        c, q = self.c, self.q
        self.para("UNITED STATES SECURITIES AND EXCHANGE COMMISSION", "Title")
        self.para("Washington, D.C. 20549", "Heading3")
        self.para("FORM 10-Q", "Title")
        self.para(
            "QUARTERLY REPORT PURSUANT TO SECTION 13 OR 15(d) OF THE SECURITIES EXCHANGE ACT OF "
            f"1934. For the quarterly period ended {q.ended}."
        )
        self.para(f"Quarterly Report for the quarter ended {q.ended}", "Heading2")
        self.para(c.name.upper(), "Title")
        self.para(f"(Exact name of registrant as specified in its charter). Delaware. {c.city}.")
        self.para(
            "Indicate by check mark whether the registrant (1) has filed all reports required to "
            "be filed by Section 13 or 15(d) of the Securities Exchange Act of 1934 during the "
            "preceding 12 months, and (2) has been subject to such filing requirements for the "
            "past 90 days. Yes [X] No [ ]. Indicate by check mark whether the registrant is a "
            "large accelerated filer, an accelerated filer, a non-accelerated filer, a smaller "
            "reporting company or an emerging growth company. Large accelerated filer [X]."
        )
        self.para(
            f"As of the latest practicable date, the registrant had {self.now['shares'] * 1000:,} "
            "shares of common stock, $0.001 par value, outstanding."
        )

    def contents(self) -> None:
        self.heading("TABLE OF CONTENTS")
        for line in (
            "PART I. FINANCIAL INFORMATION",
            "Item 1. Financial Statements (unaudited)",
            "Item 2. Management's Discussion and Analysis of Financial Condition and Results of "
            "Operations",
            "Item 3. Quantitative and Qualitative Disclosures About Market Risk",
            "Item 4. Controls and Procedures",
            "PART II. OTHER INFORMATION",
            "Item 1. Legal Proceedings. Item 1A. Risk Factors. Item 2. Unregistered Sales of "
            "Equity Securities and Use of Proceeds. Item 6. Exhibits",
        ):
            self.para(line)
        self.heading("SPECIAL NOTE REGARDING FORWARD-LOOKING STATEMENTS")
        self.para(
            "This Quarterly Report on Form 10-Q contains forward-looking statements within the "
            "meaning of the Private Securities Litigation Reform Act of 1995. Words such as "
            '"anticipate", "believe", "expect", "intend", "may", "plan" and "will" '
            "identify forward-looking statements, which include statements about our future "
            "revenue, margins, expenses, capital expenditures, liquidity and the effects of "
            "acquisitions. These statements are subject to risks and uncertainties, including "
            "those described under Risk Factors in our Annual Report on Form 10-K for the year "
            f"ended December 31, {self.last}, and actual results may differ materially. We "
            "undertake no obligation to update any forward-looking statement."
        )

    def operations(self) -> None:
        self.heading("Item 1. Financial Statements")
        self.heading("CONDENSED CONSOLIDATED STATEMENTS OF OPERATIONS (unaudited)")
        self.para("(in thousands, except per share amounts)")
        rows = [
            ("Revenue", "revenue"), ("Cost of revenue", "cost"),
            ("Research and development", "research"), ("Sales and marketing", "selling"),
            ("General and administrative", "general"), ("Operating income", "operating"),
            ("Interest expense", "interest"), ("Other income (expense), net", "other"),
            ("Income before income taxes", "pretax"), ("Provision for income taxes", "tax"),
            ("Net income", "net"), ("Weighted-average shares, basic", "shares"),
            ("Weighted-average shares, diluted", "diluted"),
        ]  # fmt: skip
        table = [[label, *self.values(key)] for label, key in rows]
        table.insert(2, ["Gross profit", *self.values("gross")])
        per_share = [f"{self.now['net'] / self.now['diluted']:.2f}"]
        per_share.append(f"{self.before['net'] / self.before['diluted']:.2f}")
        table.append(["Net income per share, diluted", *per_share] + [""] * (len(table[0]) - 3))
        self.table(self.columns(), table)
        self.para("See accompanying notes to the condensed consolidated financial statements.")

    def balance_sheet(self) -> None:
        c, now = self.c, self.now
        december = figures(c, 4, self.last)
        self.heading("CONDENSED CONSOLIDATED BALANCE SHEETS (unaudited)")
        self.para("(in thousands)")
        rows = [
            ("Cash and cash equivalents", "cash"), ("Short-term investments", "investments"),
            ("Accounts receivable, net", "receivables"),
            *([("Inventories", "inventory")] if c.inventory else []),
            ("Property and equipment, net", "ppe"), ("Goodwill", "goodwill"),
            ("Accounts payable", "payables"), ("Deferred revenue", "deferred"),
            ("Long-term debt", "debt"),
        ]  # fmt: skip

        def total(f: dict[str, int]) -> int:
            keys = ("cash", "investments", "receivables", "inventory", "ppe", "goodwill")
            return sum(f[k] for k in keys)

        table = [[label, cell(now[key]), cell(december[key])] for label, key in rows]
        table.insert(len(rows) - 3, ["Total assets", cell(total(now)), cell(total(december))])
        equity = [total(f) - f["payables"] - f["deferred"] - f["debt"] for f in (now, december)]
        table.append(["Total stockholders' equity", *map(cell, equity)])
        self.table([["", self.q.ended, f"December 31, {self.last}"]], table)
        self.para(
            f"The condensed consolidated balance sheet at December 31, {self.last} has been "
            "derived from the audited consolidated financial statements at that date."
        )

    def flows(self, year: int) -> list[int]:
        """The year to date's cash flows, as the statement lists them; cash ties to the balance
        sheets (what operations did is the balance)."""
        quarters = self.ytd if year == self.q.year else self.ytd_before
        start = figures(self.c, 4, year - 1)["cash"]
        end = figures(self.c, self.q.number, year)["cash"]
        net = sum(f["net"] for f in quarters)
        sbc = sum(f["sbc"] for f in quarters)
        capex = -sum(f["capex"] for f in quarters)
        buyback = -sum(round(f["repurchased"] * f["price"]) for f in quarters)
        operating = end - start - capex - buyback
        return [net, sbc, operating - net - sbc, operating, capex, buyback, end - start, start, end]

    def cash_flows(self) -> None:
        self.heading("CONDENSED CONSOLIDATED STATEMENTS OF CASH FLOWS (unaudited)")
        self.para(f"(in thousands) {self.months} months ended {self.q.end}")
        labels = [
            "Net income", "Stock-based compensation", "Changes in operating assets and liabilities",
            "Net cash provided by operating activities", "Purchases of property and equipment",
            "Repurchases of common stock", "Net increase (decrease) in cash and cash equivalents",
            "Cash and cash equivalents, beginning of period",
            "Cash and cash equivalents, end of period",
        ]  # fmt: skip
        now, before = self.flows(self.q.year), self.flows(self.last)
        rows = [[label, cell(a), cell(b)] for label, a, b in zip(labels, now, before, strict=True)]
        self.table([["", str(self.q.year), str(self.last)]], rows)

    def notes(self) -> None:
        c, q, now = self.c, self.q, self.now
        self.heading("NOTES TO CONDENSED CONSOLIDATED FINANCIAL STATEMENTS (unaudited)")
        self.heading("Note 1. Basis of Presentation")
        self.para(
            f'{c.name} (the "Company") {c.business}. The accompanying unaudited condensed '
            "consolidated financial statements have been prepared in accordance with U.S. "
            "generally accepted accounting principles for interim financial information and "
            "should be read together with the audited consolidated financial statements in our "
            f"Annual Report on Form 10-K for the year ended December 31, {self.last}. In the "
            "opinion of "
            "management, they include all normal recurring adjustments necessary for a fair "
            f"presentation. Results for the {self.periods} are not necessarily indicative of the "
            "results to be expected for the full year."
        )
        self.heading("Note 2. Revenue")
        self.para(
            "We recognize revenue when control of the promised goods or services transfers to "
            "customers, in an amount that reflects the consideration we expect to receive. "
            f"Remaining performance obligations were {money(now['deferred'] * 4)} at {q.ended}, "
            "of which we expect to recognize about 60% over the next twelve months. Revenue by "
            "geographic area, based on the customer's billing address (in thousands):"
        )
        rows = [
            ["United States", *self.values("revenue", 1 - c.abroad)],
            ["International", *self.values("revenue", c.abroad)],
        ]
        self.table(self.columns(), rows)
        self.heading("Note 3. Fair Value Measurements")
        self.para(
            "We measure cash equivalents, investments and derivative instruments at fair value. "
            "Level 1 inputs are quoted prices in active markets; Level 2 inputs are observable "
            "prices of similar instruments; Level 3 inputs are unobservable. We had no transfers "
            f"between levels during the {self.periods}. Assets at fair value at {q.ended} "
            "(in thousands):"
        )
        funds, bills, bonds = now["cash"] * 0.4, now["investments"] * 0.6, now["investments"] * 0.4
        rows = [
            ["Money market funds", cell(round(funds)), "", cell(round(funds))],
            ["U.S. Treasury securities", "", cell(round(bills)), cell(round(bills))],
            ["Corporate bonds", "", cell(round(bonds)), cell(round(bonds))],
        ]
        self.table([["", "Level 1", "Level 2", "Total"]], rows)
        self.heading("Note 4. Segment Information")
        self.para(
            f"We manage the business in three reportable segments: {', '.join(c.segments)}. Our "
            "chief operating decision maker evaluates segments on revenue and segment operating "
            "income. (in thousands)"
        )
        rows = []
        for n, segment in enumerate(c.segments):
            rows.append([f"{segment} revenue", *self.values(f"segment{n}")])
            rows.append([f"{segment} operating income", *self.values(f"segment{n}_income")])
        self.table(self.columns(), rows)
        self.heading("Note 5. Debt")
        self.para(
            f"Long-term debt was {money(now['debt'])} at {q.ended}, consisting of senior notes and "
            "borrowings under our revolving credit facility. We were in compliance with all "
            "financial covenants, including the maximum leverage ratio of 3.5 to 1.0."
        )
        self.heading("Note 6. Stock-Based Compensation")
        self.para(
            "We grant restricted stock units and performance stock units to employees and "
            "directors. Stock-based compensation expense by line item (in thousands):"
        )
        parts = [("Cost of revenue", 0.1), ("Research and development", 0.35),
                 ("Sales and marketing", 0.3), ("General and administrative", 0.25)]  # fmt: skip
        rows = [[label, cell(round(now["sbc"] * s)), cell(round(self.before["sbc"] * s))]
                for label, s in parts]  # fmt: skip
        rows.append(["Total stock-based compensation", cell(now["sbc"]), cell(self.before["sbc"])])
        years = [str(q.year), str(self.last)]
        self.table([["", f"Three months ended {q.end},", ""], ["", *years]], rows)
        self.para(
            f"As of {q.ended}, unrecognized compensation cost related to unvested awards was "
            f"{money(now['sbc'] * 9)}, expected to be recognized over a weighted-average period "
            "of 2.4 years."
        )
        self.heading("Note 7. Income Taxes")
        self.para(
            f"Our effective tax rate was {now['tax'] / now['pretax']:.1%} for the {self.periods}, "
            f"compared to {self.before['tax'] / self.before['pretax']:.1%} for the same period "
            f"of {self.last}. The rate differs from the U.S. federal statutory rate of 21% mainly "
            "because of state taxes, the research and development credit, foreign earnings taxed "
            "at different rates, and excess tax benefits or shortfalls from stock-based awards. "
            "The Organisation for Economic Co-operation and Development global minimum tax (Pillar "
            "Two) applies to us from 2024; we do not expect it to have a material effect."
        )
        self.heading("Note 8. Net Income per Share")
        self.para(
            "Basic net income per share is net income divided by the weighted-average shares "
            "outstanding; diluted net income per share adds the dilutive effect of restricted "
            "stock units and stock options under the treasury stock method (in thousands, except "
            "per share amounts):"
        )
        rows = [
            ["Net income", *self.values("net")],
            ["Weighted-average shares, basic", *self.values("shares")],
            ["Weighted-average shares, diluted", *self.values("diluted")],
        ]
        self.table(self.columns(), rows)
        self.heading("Note 9. Leases")
        self.para(
            "We lease offices, warehouses, plants and equipment under operating leases that "
            "expire at various dates through 2039, some with options to extend. Operating lease "
            f"cost was {money(now['revenue'] * 0.011)} for the {self.periods}. The "
            "weighted-average remaining lease term was 7.2 years and the weighted-average "
            "discount rate 4.6%."
        )
        self.heading("Note 10. Commitments and Contingencies")
        self.para(
            "From time to time we are involved in legal proceedings arising in the ordinary "
            "course of business. We record a liability when a loss is probable and reasonably "
            "estimable. We do not believe that any pending matter will have a material adverse "
            "effect on our financial position."
        )
        self.heading("Note 11. Recent Accounting Pronouncements")
        self.para(
            "The FASB has issued accounting standards updates that are not yet effective for "
            "us, including improvements to reportable segment disclosures, which will require "
            "disclosure of significant segment expenses regularly provided to the chief operating "
            "decision maker, and improvements to income tax disclosures, which will require a "
            "disaggregated rate reconciliation and income taxes paid by jurisdiction. We are "
            "evaluating them; none will affect our financial position or results of operations."
        )
        self.heading("Note 12. Subsequent Events")
        self.para(
            "We evaluated subsequent events through the date on which these condensed "
            "consolidated financial statements were issued and identified none that required "
            "recognition or disclosure."
        )

    def mdna(self) -> None:
        c, q, now, before = self.c, self.q, self.now, self.before
        revenue_driver, expense_driver, event = EVENTS[c.key, q.year, q.number]
        opex = [f["research"] + f["selling"] + f["general"] for f in (now, before)]
        gross = [(f["revenue"] - f["cost"]) / f["revenue"] for f in (now, before)]
        self.heading(
            "Item 2. Management's Discussion and Analysis of Financial Condition and Results of "
            "Operations"
        )
        self.para(
            "The following discussion should be read together with the condensed consolidated "
            "financial statements and notes in Item 1 and with our Annual Report on Form 10-K."
        )
        self.heading("Overview")
        self.para(
            f"{c.short} {c.business}. Our customers are {c.customers}. We report three "
            f"segments: {', '.join(c.segments)}."
        )
        self.heading(f"Recent Developments in the {q.ordinal.title()} Quarter of {q.year}")
        self.para(event)
        self.heading("Results of Operations")
        self.para(
            f"Revenue was {money(now['revenue'])} for the {self.periods}, "
            f"{change(now['revenue'], before['revenue'])} compared to "
            f"{money(before['revenue'])} for the same period of {self.last}. The change was "
            "driven "
            f"primarily by {revenue_driver}."
        )
        self.para(
            f"Gross margin was {gross[0]:.1%} in the {q.ordinal} quarter of {q.year}, compared "
            f"to {gross[1]:.1%} a year earlier, reflecting product and customer mix and pricing."
        )
        self.para(
            f"Total operating expenses were {money(opex[0])} for the {self.periods}, "
            f"{change(opex[0], opex[1])} from {money(opex[1])} a year earlier. The increase was "
            f"driven by {expense_driver}. Research and development expense was "
            f"{money(now['research'])}, sales and marketing expense {money(now['selling'])} and "
            f"general and administrative expense {money(now['general'])}."
        )
        self.para(
            f"Operating income was {money(now['operating'])} and net income was "
            f"{money(now['net'])}, or ${now['net'] / now['diluted']:.2f} per diluted share, "
            f"compared to {money(before['net'])} in the same quarter of {self.last}. Our "
            "effective tax "
            f"rate was {now['tax'] / now['pretax']:.1%}."
        )
        self.para(
            f"Stock-based compensation expense was {money(now['sbc'])} for the {self.periods}, "
            f"compared to {money(before['sbc'])} a year earlier."
        )
        self.heading("Segment Results")
        for n, segment in enumerate(c.segments):
            key = f"segment{n}"
            self.para(
                f"{segment} revenue was {money(now[key])}, "
                f"{change(now[key], before[key])} from the prior-year quarter, and segment "
                f"operating income was {money(now[key + '_income'])}."
            )
        self.heading("Liquidity and Capital Resources")
        self.para(
            f"As of {q.ended}, we had {money(now['cash'])} of cash and cash equivalents and "
            f"{money(now['investments'])} of short-term investments. We believe that these "
            "balances, cash from operations and the undrawn capacity of our revolving credit "
            "facility will be sufficient to meet our working capital, capital expenditure and "
            "debt service needs for at least the next 12 months."
        )
        flows, flows_before = self.flows(q.year), self.flows(self.last)
        ytd = f"{self.months.lower()} months ended {q.ended}"
        self.para(
            f"Net cash provided by operating activities was {money(flows[3])} for the {ytd}, "
            f"compared to {money(flows_before[3])} for the same period of {self.last}, "
            "reflecting net "
            "income adjusted for non-cash items and the timing of collections and payments. Net "
            f"cash used in investing activities included capital expenditures of "
            f"{money(-flows[4])}. Financing activities included {money(-flows[5])} of share "
            "repurchases; during the quarter we repurchased "
            f"{now['repurchased'] * 1000:,} shares under the program authorized in 2022."
        )
        self.heading("Non-GAAP Financial Measures")
        self.para(
            "We use adjusted EBITDA, a non-GAAP measure, to evaluate operating performance: net "
            "income before interest, income taxes, depreciation and amortization, stock-based "
            "compensation and restructuring and impairment charges. It is not a substitute for "
            "net income prepared under GAAP. Reconciliation (in thousands):"
        )
        keys = ("net", "interest", "tax", "sbc")
        labels = ("Net income", "Interest expense", "Provision for income taxes",
                  "Stock-based compensation")  # fmt: skip
        rows = [[label, *self.values(key)] for label, key in zip(labels, keys, strict=True)]
        rows.insert(3, ["Depreciation and amortization", *self.values("ppe", 0.03)])
        self.table(self.columns(), rows)
        self.heading("Seasonality")
        self.para(
            "Our results vary from quarter to quarter with the timing of customer orders, "
            "budgets and renewals, weather and holidays; results of one quarter are not "
            "necessarily indicative of the next."
        )
        self.heading("Critical Accounting Estimates")
        self.para(
            "Our critical accounting estimates are described in our Annual Report on Form 10-K "
            "and include revenue recognition for contracts with multiple performance obligations, "
            "the valuation of goodwill and acquired intangible assets, and income taxes. There "
            f"have been no material changes to them during the {self.periods}."
        )

    def market_risk(self) -> None:
        self.heading("Item 3. Quantitative and Qualitative Disclosures About Market Risk")
        self.para("Foreign Currency Exchange Risk. " + self.c.currency)
        self.para(
            "Interest Rate Risk. Borrowings under our revolving credit facility bear interest at "
            "variable rates based on the secured overnight financing rate (SOFR). A 100 basis "
            "point increase in interest rates would change our annual interest expense by about "
            f"{money(self.now['debt'] * 0.004)}."
        )
        self.para("Commodity Price Risk. " + self.c.commodity)
        self.heading("Item 4. Controls and Procedures")
        self.para(
            "Our management, with the participation of our Chief Executive Officer and Chief "
            "Financial Officer, evaluated the effectiveness of our disclosure controls and "
            "procedures as of the end of the period covered by this report and concluded that "
            "they were effective at the reasonable assurance level. There was no change in our "
            "internal control over financial reporting during the quarter that materially "
            "affected, or is reasonably likely to materially affect, it."
        )

    def part_two(self) -> None:
        c, q, now = self.c, self.q, self.now
        self.heading("PART II. OTHER INFORMATION")
        self.heading("Item 1. Legal Proceedings")
        self.para("See Note 10, Commitments and Contingencies, in Item 1 of Part I.")
        self.heading("Item 1A. Risk Factors")
        self.para(
            "An investment in our common stock involves risks. The risks below, which restate and "
            "update those in our Annual Report on Form 10-K, could harm our business, results of "
            "operations and financial condition, and the trading price of our common stock."
        )
        for title, text in RISKS:
            self.para(f"<b>{title}</b> " + text.format(short=c.short, customers=c.customers))
        self.para(f"<b>Changes in exchange rates may affect our reported results.</b> {c.currency}")
        self.heading("Item 2. Unregistered Sales of Equity Securities and Use of Proceeds")
        first = {1: "January", 2: "April", 3: "July"}[q.number]
        months = {1: "January February March", 2: "April May June", 3: "July August September"}
        bought = now["repurchased"] * 1000
        rows = []
        for n, month in enumerate(months[q.number].split()):
            share = bought // 3 + (bought % 3 if n == 2 else 0)
            rows.append([f"{month} {q.year}", f"{share:,}", f"${now['price'] + n * 0.37:.2f}"])
        rows.append(["Total", f"{bought:,}", ""])
        self.table([["Period", "Shares purchased", "Average price paid"]], rows)
        self.para(
            f"The table shows purchases of our common stock from {first} 1 to {q.ended}, under "
            "the repurchase program of $500 million authorized by the Board in 2022."
        )
        self.heading("Item 6. Exhibits")
        self.para(
            "31.1 and 31.2 Certifications pursuant to Rule 13a-14(a). 32.1 Certification "
            "pursuant to 18 U.S.C. Section 1350. 101 Inline XBRL documents."
        )
        self.heading("SIGNATURES")
        self.para(
            "Pursuant to the requirements of the Securities Exchange Act of 1934, the registrant "
            f"has duly caused this report to be signed on its behalf. {c.name} By: /s/ Chief "
            "Financial Officer."
        )
