"""Quarterly reports like real Form 10-Q filings, and the questions users ask of them.

Five made-up companies (two of them software companies) over six quarters (the first three of
2023 and of 2024): 30 PDFs of 13 pages each, with a cover page, financial statements drawn as
tables, notes, MD&A, market risk, risk factors and Part II. As in real filings most of the text
is the same from one quarter to the next, and much of it from one company to the next; the
figures and a few sentences differ, so retrieval has to find the right company and quarter.
Deep pages name neither the company nor the quarter's short form ("Q2 2024"): only the file
name and the period ("three months ended June 30, 2024") tell them apart.

What they say and what is asked is here; how a filing is laid out, in tests/filing_pdf.py. Used by
tests/ingestion/test_filings.py and bench/filings.py. Needs reportlab (a test dependency).
"""

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Company:
    key: str
    name: str
    short: str
    city: str
    business: str
    segments: tuple[str, str, str]
    customers: str
    revenue: int  # quarterly, in thousands, in the first quarter of 2024
    abroad: float  # share of revenue billed outside the United States
    margin: float  # gross margin
    inventory: bool
    currency: str  # what the market-risk section says about exchange rates
    commodity: str


@dataclass(frozen=True)
class Quarter:
    number: int
    year: int
    end: str  # "June 30"
    ordinal: str  # "second"

    @property
    def ended(self) -> str:
        return f"{self.end}, {self.year}"


COMPANIES = (
    Company(
        "acme", "Acme Industries, Inc.", "Acme", "Dayton, Ohio",
        "designs and manufactures industrial automation equipment, precision motion-control "
        "components and the services that keep them running",
        ("Industrial Automation", "Motion Control", "Aftermarket Services"),
        "automotive, packaging and food-processing manufacturers", 412_000, 0.18, 0.36, True,
        "About 18% of our revenue is billed in Canadian dollars and Mexican pesos, while most of "
        "our costs are in U.S. dollars; a 10% stronger dollar would have reduced quarterly "
        "revenue by about $7 million.",
        "We buy steel, copper and rare-earth magnets; we pass most price increases on to "
        "customers with a lag of one to two quarters.",
    ),
    Company(
        "borealis", "Borealis Energy Corp.", "Borealis", "Minneapolis, Minnesota",
        "owns and operates wind and solar generation facilities and provides grid services to "
        "utilities and regional transmission organizations",
        ("Wind Generation", "Solar Generation", "Grid Services"),
        "utilities, corporate power purchasers and grid operators", 286_000, 0.03, 0.52, False,
        "Nearly all of our revenue and costs are in U.S. dollars; we buy some turbine parts in "
        "euros and hedge those commitments with forward contracts.",
        "Most of our output is sold under long-term power purchase agreements at fixed prices; "
        "about 22% is sold at market prices and exposed to changes in wholesale power prices.",
    ),
    Company(
        "corvid", "Corvid Software, Inc.", "Corvid", "Austin, Texas",
        "provides a cloud platform for data management and security analytics, sold as "
        "subscriptions, with professional services to deploy it",
        ("Cloud Platform", "Security Analytics", "Professional Services"),
        "mid-sized and large enterprises and government agencies", 198_000, 0.41, 0.78, False,
        "About 41% of our revenue is earned outside the United States, mostly in euros, British "
        "pounds and Japanese yen, and our Dublin and Tokyo offices pay their costs in local "
        "currency. A stronger U.S. dollar reduces our reported revenue and remaining performance "
        "obligations; we do not hedge revenue, and exchange-rate changes may harm our results, "
        "make our subscriptions more expensive for customers abroad and cause losses on "
        "intercompany balances.",
        "We have no material exposure to commodity prices.",
    ),
    Company(
        "dunmore", "Dunmore Retail Group, Inc.", "Dunmore", "Richmond, Virginia",
        "operates specialty home and apparel stores, a digital commerce business and a wholesale "
        "business that supplies department stores",
        ("Stores", "Digital Commerce", "Wholesale"),
        "consumers in 27 states and national department-store partners", 655_000, 0.02, 0.41, True,
        "We buy about a third of our merchandise from suppliers in Asia, priced in U.S. dollars; "
        "a weaker dollar may raise our costs in later seasons.",
        "Cotton, freight and fuel prices affect our merchandise and distribution costs.",
    ),
    Company(
        "larkspur", "Larkspur Software Corp.", "Larkspur", "Seattle, Washington",
        "develops human-resources and payroll software sold as cloud subscriptions, with "
        "support and implementation services",
        ("Subscription", "Support", "Professional Services"),
        "mid-sized employers in North America and Europe", 231_000, 0.27, 0.74, False,
        "About 27% of our revenue is billed in euros, British pounds and Canadian dollars. A "
        "stronger U.S. dollar reduces our reported revenue; we hedge part of our euro operating "
        "costs with forward contracts, and exchange-rate changes may harm our results.",
        "We have no material exposure to commodity prices.",
    ),
)  # fmt: skip

QUARTERS = tuple(
    Quarter(number, year, end, ordinal)
    for year in (2023, 2024)
    for number, end, ordinal in ((1, "March 31", "first"), (2, "June 30", "second"),
                                 (3, "September 30", "third"))
)  # fmt: skip

# What differs from quarter to quarter besides the figures, as in real MD&A: (revenue driver,
# operating expense driver, the quarter's notable event).
EVENTS: dict[tuple[str, int, int], tuple[str, str, str]] = {
    ("acme", 2023, 1): (
        "strong demand for palletizing cells from European food processors",
        "the launch of our Motion Control online store and higher travel",
        "In January 2023 we opened a service center in Monterrey, Mexico, to support customers "
        "in northern Mexico.",
    ),
    ("acme", 2023, 2): (
        "price increases of about 5% on controllers and drives to offset higher steel costs",
        "higher warranty costs for the recall of the R-200 servo drive",
        "In June 2023 we recalled 6,400 R-200 servo drives because of a capacitor defect that "
        "can cause overheating, and recorded a warranty charge of $3.9 million.",
    ),
    ("acme", 2023, 3): (
        "the release of the ACX-7 programmable controller",
        "a $2.7 million charge for a settlement with the Ohio Environmental Protection Agency "
        "and higher research spending on the ACX-7",
        "In August 2023 we settled an Ohio Environmental Protection Agency (Ohio EPA) notice of "
        "violation concerning air emissions at the Toledo plant for $2.7 million.",
    ),
    ("borealis", 2023, 1): (
        "the repowered Prairie Wind facility and higher winter capacity prices",
        "repowering costs at Prairie Wind",
        "In February 2023 we completed the repowering of the 180-megawatt Prairie Wind "
        "facility in Iowa with new blades and nacelles.",
    ),
    ("borealis", 2023, 2): (
        "new power purchase agreements with two data-center operators",
        "repairs of hail damage at the Sun Valley solar site in Colorado",
        "On June 11, 2023, a hailstorm damaged about 15% of the panels at our Sun Valley solar "
        "site; repairs are covered by insurance above a $2 million deductible.",
    ),
    ("borealis", 2023, 3): (
        "record summer prices in ERCOT during the August heat wave",
        "higher transmission congestion costs and the start of construction at Red Mesa",
        "In September 2023 we issued $500 million of 6.25% green senior notes due 2033 to fund "
        "the Red Mesa solar project.",
    ),
    ("corvid", 2023, 1): (
        "new Security Analytics customers in financial services",
        "the opening of our Tokyo office and higher cloud hosting costs",
        "In February 2023 we opened an office in Tokyo, Japan, our first in Asia.",
    ),
    ("corvid", 2023, 2): (
        "the acquisition of Lumen Data Ltd., a data-catalog vendor",
        "the integration of Lumen Data and acquisition-related legal fees",
        "On April 3, 2023, we acquired Lumen Data Ltd., a data-catalog software company based "
        "in Cambridge, England, for $61.5 million.",
    ),
    ("corvid", 2023, 3): (
        "strong renewals, with net revenue retention of 121%",
        "$4.2 million of severance costs for a reduction in force",
        "In July 2023 we reduced our workforce by about 6%, mostly in sales and general "
        "administration, and recorded $4.2 million of severance costs.",
    ),
    ("dunmore", 2023, 1): (
        "the reopening of 14 remodeled stores and strong Valentine's Day sales",
        "store remodeling costs and higher credit card fees",
        "During the quarter we completed remodels of 14 stores in Virginia and North Carolina.",
    ),
    ("dunmore", 2023, 2): (
        "the launch of our loyalty program, Dunmore Rewards",
        "marketing for the Dunmore Rewards launch",
        "In April 2023 we launched Dunmore Rewards, a free loyalty program; it had 3.1 million "
        "members at June 30, 2023.",
    ),
    ("dunmore", 2023, 3): (
        "the first wholesale shipments to department stores",
        "a $5.6 million charge for a class action settlement over wage-and-hour claims in "
        "California",
        "In August 2023 we agreed to pay $5.6 million to settle a class action over "
        "wage-and-hour claims by California store employees.",
    ),
    ("acme", 2024, 1): (
        "higher shipments of servo drives to electric-vehicle battery plants, partly offset by "
        "lower demand for palletizing cells in Europe",
        "annual merit increases and the addition of 140 engineers to our controls software team",
        "On February 12, 2024, we completed the acquisition of Tessaro Robotics S.r.l., a maker "
        "of vision-guided pick-and-place systems based in Turin, Italy, for $84.0 million in cash.",
    ),
    ("acme", 2024, 2): (
        "the first full quarter of Tessaro Robotics sales and price increases of about 3% on "
        "controllers",
        "a $6.3 million restructuring charge for consolidating our Toledo plant into the Dayton "
        "campus, including severance for 210 employees",
        "In May 2024 the Board approved a plan to close the Toledo, Ohio assembly plant and move "
        "its production to Dayton by the end of 2024.",
    ),
    ("acme", 2024, 3): (
        "record aftermarket service contracts and a large robotic work-cell order from a North "
        "American beverage bottler",
        "higher freight and warehousing costs after a fire at a third-party logistics warehouse "
        "in Memphis, Tennessee, and expanded trade-show marketing",
        "On August 21, 2024, a fire at a third-party logistics warehouse in Memphis destroyed "
        "$11.2 million of finished goods; we recorded an insurance receivable for the part we "
        "expect to recover.",
    ),
    ("borealis", 2024, 1): (
        "new solar capacity at the Red Mesa project, partly offset by lower wind speeds across "
        "our Great Plains fleet, which reduced wind generation by 9%",
        "higher turbine maintenance costs after an unusually cold January and the start of "
        "operations at Red Mesa",
        "The 240-megawatt Red Mesa solar project in New Mexico reached commercial operation on "
        "January 29, 2024.",
    ),
    ("borealis", 2024, 2): (
        "a strong spring wind resource and higher capacity payments in the PJM market",
        "a $4.8 million impairment of two retired turbines at the Buffalo Ridge site and higher "
        "property taxes",
        "On May 14, 2024, we entered into a new $750 million senior unsecured revolving credit "
        "facility maturing in 2029, replacing the 2021 facility.",
    ),
    ("borealis", 2024, 3): (
        "the acquisition of Kestrel Storage LLC, whose battery sites added $21.7 million of grid "
        "services revenue, and higher summer power prices",
        "integration costs for Kestrel Storage and higher insurance premiums for coastal solar "
        "sites",
        "On July 2, 2024, we completed the acquisition of Kestrel Storage LLC, an operator of 1.1 "
        "gigawatt-hours of battery energy storage in Texas and California, for $412 million, "
        "paid with cash and borrowings under our revolving credit facility.",
    ),
    ("corvid", 2024, 1): (
        "growth in Cloud Platform subscriptions, with net revenue retention of 117%, partly "
        "offset by a stronger U.S. dollar",
        "sales commissions on record first-quarter bookings and the expansion of our Dublin, "
        "Ireland sales office",
        "In March 2024 we launched Corvid Sentinel, an AI-assisted threat detection add-on to "
        "our Security Analytics suite.",
    ),
    ("corvid", 2024, 2): (
        "adoption of Corvid Sentinel by more than 400 customers and price increases on renewal",
        "$9.1 million of stock-based compensation for the chief executive transition awards and "
        "hiring in research and development",
        "Effective April 15, 2024, Priya Raman succeeded Martin Okafor as Chief Executive "
        "Officer; Mr. Okafor remains chair of the Board.",
    ),
    ("corvid", 2024, 3): (
        "large multi-year contracts with two European government agencies, partly offset by "
        "slower professional services",
        "a $5.4 million charge to settle the Halvorsen patent infringement lawsuit and higher "
        "cloud hosting costs",
        "On August 8, 2024, we settled the patent infringement lawsuit brought by Halvorsen Data "
        "AS for a one-time payment of $5.4 million, without admitting liability.",
    ),
    ("dunmore", 2024, 1): (
        "comparable-store sales growth of 2.1% and a 14% increase in digital orders, partly "
        "offset by cold weather that delayed spring apparel sales",
        "higher store wages after we raised the minimum starting wage to $17 per hour",
        "During the quarter we opened 6 new stores and closed 3, ending it with 412 stores in "
        "27 states.",
    ),
    ("dunmore", 2024, 2): (
        "the launch of our Harbor & Pine private-label home collection and strong Memorial Day "
        "promotions",
        "the costs of the new Columbus, Ohio distribution center and higher marketing for the "
        "Harbor & Pine launch",
        "In May 2024 our new 900,000-square-foot distribution center in Columbus, Ohio began "
        "shipping to stores in the Midwest.",
    ),
    ("dunmore", 2024, 3): (
        "back-to-school demand and wholesale shipments to a new department-store partner, partly "
        "offset by lower comparable-store sales in the Southeast after an August hurricane",
        "a $7.9 million impairment of 11 underperforming stores and the response to a "
        "cybersecurity incident",
        "On September 4, 2024, we detected unauthorized access to a vendor-hosted loyalty "
        "program database; the incident was contained and we notified affected customers.",
    ),
    ("larkspur", 2023, 1): (
        "new payroll customers in Germany after our localized release",
        "the expansion of our Berlin engineering center",
        "In January 2023 we released Larkspur Payroll for Germany, our first payroll product "
        "outside North America.",
    ),
    ("larkspur", 2023, 2): (
        "price increases of 7% on renewals",
        "a $3.1 million charge to exit our San Jose office lease",
        "In May 2023 we exited our San Jose, California office; its employees moved to remote "
        "work and our Seattle headquarters.",
    ),
    ("larkspur", 2023, 3): (
        "strong demand for our benefits administration module",
        "higher data-center costs during our migration to a public cloud provider",
        "In September 2023 we completed the migration of all customers from our own data "
        "centers to a public cloud provider.",
    ),
    ("larkspur", 2024, 1): (
        "the acquisition of Quillpoint Inc., a time-and-attendance software company",
        "integration costs for Quillpoint",
        "On January 16, 2024, we acquired Quillpoint Inc., a time-and-attendance software "
        "company, for $128 million in cash and stock.",
    ),
    ("larkspur", 2024, 2): (
        "renewals at higher prices and sales of Quillpoint time tracking to existing customers",
        "a $4.4 million impairment of capitalized software for the discontinued Larkspur Learn "
        "product",
        "In June 2024 we discontinued Larkspur Learn, our training-management product, and "
        "recorded a $4.4 million impairment of its capitalized software.",
    ),
    ("larkspur", 2024, 3): (
        "a multi-year contract with a Canadian provincial government",
        "the costs of the August 30 payroll processing outage, including customer credits",
        "On August 30, 2024, a software defect delayed payroll processing for about 1,900 "
        "customers for up to 36 hours; we issued $2.3 million of service credits.",
    ),
}


# Item 1A, as most filers restate it every quarter: the same text in every filing of a company,
# and much of it in every company's, full of the words questions use (revenue, cash, expenses).
RISKS = (
    ("Our quarterly results fluctuate and may fall below expectations.",
     "Our revenue, gross margin, operating expenses and cash flows vary from quarter to quarter "
     "with the timing of orders from {customers}, pricing, the mix of our offerings, "
     "acquisitions and one-time charges. Results of any quarter are not indicative of future "
     "quarters, and a shortfall against the expectations of analysts could lower our stock "
     "price."),
    ("Economic conditions may reduce demand.",
     "Inflation, higher interest rates, slower growth or a recession may lead {customers} to "
     "delay or reduce purchases, lengthen payment terms or fail to pay, which would reduce our "
     "revenue and operating cash flow and increase our credit losses."),
    ("Competition may lower our prices and margins.",
     "We compete with larger companies with greater resources and with new entrants offering "
     "lower prices. To keep customers we may have to cut prices or raise spending on research "
     "and development and on sales and marketing, which would reduce our operating income."),
    ("We depend on suppliers and on the continuity of our operations.",
     "A supplier's failure, a natural disaster, a fire, a pandemic or an armed conflict could "
     "interrupt our operations or our suppliers', delay deliveries and raise our costs; our "
     "insurance may not cover all of the resulting losses."),
    ("Security breaches could harm our business.",
     "Our information systems, and those of vendors that process data for us, may be breached "
     "by cyberattacks, ransomware or employee error, which could disrupt operations, expose "
     "personal information and lead to litigation, regulatory fines, remediation expenses and "
     "harm to our reputation."),
    ("Acquisitions may not deliver the benefits we expect.",
     "We have acquired and may acquire businesses. Integration may take longer and cost more "
     "than planned, we may lose key employees or customers of an acquired business, and we may "
     "record impairments of goodwill and intangible assets."),
    ("Our indebtedness limits our flexibility.",
     "Our credit agreement requires us to meet financial covenants, including a maximum "
     "leverage ratio, and restricts dividends, share repurchases and acquisitions. We use part "
     "of our cash flow to pay interest, and higher interest rates raise our borrowing costs. A "
     "breach could accelerate our debt."),
    ("We may not attract and retain key employees.",
     "Our success depends on our executives and skilled employees. Competition for talent is "
     "intense; stock-based compensation is an important part of our pay, and a decline in our "
     "stock price may make it less effective and require cash compensation instead."),
    ("Changes in tax laws may raise our effective tax rate.",
     "We are subject to income taxes in the United States and abroad. New laws, including the "
     "global minimum tax, changes in the mix of our earnings and audits by tax authorities may "
     "increase our effective tax rate and reduce our net income."),
    ("Regulation, litigation and trade policy may increase our costs.",
     "We are subject to laws on data protection, the environment, employment, export controls "
     "and tariffs. Legal proceedings, including claims of patent infringement, may be costly "
     "and divert management's attention, whatever their outcome."),
    ("Our stock price may be volatile, and repurchases may not enhance value.",
     "{short}'s stock price may fluctuate widely. We repurchase shares under a program the Board "
     "may suspend at any time; repurchases reduce the cash available for other uses."),
)  # fmt: skip


def file_name(company: Company, quarter: Quarter) -> str:
    return f"{company.key}-10q-{quarter.year}-q{quarter.number}.pdf"


# (question, the company, the quarters whose filings answer it: any of them counts). A prior
# year's figure is also in the next year's filing of that quarter, as its comparative.
QUESTIONS: list[tuple[str, str, str]] = [
    ("What was Acme's total revenue for the quarter ended June 30, 2024?", "acme", "2024q2"),
    ("How much revenue did Acme report in the first quarter of 2024?", "acme", "2024q1"),
    ("What drove the increase in Acme's operating expenses in the second quarter of 2024?",
     "acme", "2024q2"),
    ("How did Acme's Aftermarket Services segment perform in Q3 2024?", "acme", "2024q3"),
    ("Which company did Acme acquire in early 2024 and for how much?", "acme", "2024q1"),
    ("What happened at the Memphis warehouse that stored Acme's goods?", "acme", "2024q3"),
    ("How much cash and cash equivalents did Acme have as of September 30, 2024?", "acme",
     "2024q3"),
    ("What was Acme's net cash provided by operating activities in the first half of 2024?",
     "acme", "2024q2"),
    ("How does Acme describe its exposure to steel and copper prices?", "acme", "all"),
    ("What was Acme's operating income in the three months ended March 31, 2024?", "acme",
     "2024q1"),
    ("Why did Acme recall servo drives in 2023?", "acme", "2023q2"),
    ("How much did Acme pay to settle the Ohio EPA notice of violation?", "acme", "2023q3"),
    ("What was Acme's revenue for the quarter ended June 30, 2023?", "acme", "2023q2 2024q2"),
    ("How much cash did Acme have at the end of Q3 2023?", "acme", "2023q3 2024q3"),
    ("How much cash did Borealis hold at the end of Q1 2024?", "borealis", "2024q1"),
    ("What was Borealis's net income for the three months ended June 30, 2024?", "borealis",
     "2024q2"),
    ("Which acquisition did Borealis complete in the third quarter of 2024?", "borealis",
     "2024q3"),
    ("What are the terms of the revolving credit facility Borealis entered into in May 2024?",
     "borealis", "2024q2"),
    ("Why did Borealis's wind generation fall in the first quarter of 2024?", "borealis",
     "2024q1"),
    ("What drove Borealis's operating expenses up in Q3 2024?", "borealis", "2024q3"),
    ("What was Borealis's Solar Generation segment revenue for the quarter ended March 31, 2024?",
     "borealis", "2024q1"),
    ("How much did Borealis spend on capital expenditures in the nine months ended "
     "September 30, 2024?", "borealis", "2024q3"),
    ("How much of Borealis's output is sold at market prices?", "borealis", "all"),
    ("How much long-term debt did Borealis have at September 30, 2024?", "borealis", "2024q3"),
    ("What notes did Borealis issue in September 2023 and at what interest rate?", "borealis",
     "2023q3"),
    ("What happened at Borealis's Sun Valley solar site in June 2023?", "borealis", "2023q2"),
    ("What drove Borealis's revenue in the first quarter of 2023?", "borealis", "2023q1"),
    ("What risks does Corvid list about currency exchange?", "corvid", "all"),
    ("How much stock-based compensation expense did Corvid record in Q2 2024?", "corvid",
     "2024q2"),
    ("Who became Corvid's chief executive officer in April 2024?", "corvid", "2024q2"),
    ("What was the Halvorsen lawsuit settlement Corvid paid?", "corvid", "2024q3"),
    ("What was Corvid's diluted earnings per share for the quarter ended March 31, 2024?",
     "corvid", "2024q1"),
    ("What new product did Corvid launch in March 2024?", "corvid", "2024q1"),
    ("What was Corvid's deferred revenue at the end of the third quarter of 2024?", "corvid",
     "2024q3"),
    ("How did Corvid's Professional Services segment do in the three months ended "
     "September 30, 2024?", "corvid", "2024q3"),
    ("What was Corvid's gross margin in the second quarter of 2024?", "corvid", "2024q2"),
    ("What was Corvid's total revenue for the nine months ended September 30, 2024?", "corvid",
     "2024q3"),
    ("Which company did Corvid acquire in April 2023?", "corvid", "2023q2"),
    ("How large was Corvid's workforce reduction in Q3 2023 and what did it cost?", "corvid",
     "2023q3"),
    ("What was Corvid's net income in Q1 2023?", "corvid", "2023q1 2024q1"),
    ("How many stores did Dunmore operate at the end of the first quarter of 2024?", "dunmore",
     "2024q1"),
    ("What was Dunmore's revenue in Q3 2024?", "dunmore", "2024q3"),
    ("What did Dunmore say about the cybersecurity incident in September 2024?", "dunmore",
     "2024q3"),
    ("When did Dunmore's Columbus distribution center start shipping?", "dunmore", "2024q2"),
    ("What drove the increase in Dunmore's operating expenses in the first quarter of 2024?",
     "dunmore", "2024q1"),
    ("How many shares did Dunmore repurchase during the quarter ended June 30, 2024?",
     "dunmore", "2024q2"),
    ("What were Dunmore's inventories as of June 30, 2024?", "dunmore", "2024q2"),
    ("How did Dunmore's Digital Commerce segment perform in Q1 2024?", "dunmore", "2024q1"),
    ("How do freight and cotton prices affect Dunmore?", "dunmore", "all"),
    ("What was Dunmore's net income in the second quarter of 2024?", "dunmore", "2024q2"),
    ("How many members did Dunmore Rewards have by the middle of 2023?", "dunmore", "2023q2"),
    ("What did Dunmore agree to pay in the California wage-and-hour class action?", "dunmore",
     "2023q3"),
    ("What drove the increase in Dunmore's operating expenses in the first quarter of 2023?",
     "dunmore", "2023q1"),
    ("What was Dunmore's gross margin in the second quarter of 2023?", "dunmore",
     "2023q2 2024q2"),
    ("What was Larkspur's total revenue for the quarter ended September 30, 2024?", "larkspur",
     "2024q3"),
    ("Which company did Larkspur acquire in January 2024?", "larkspur", "2024q1"),
    ("What happened during Larkspur's payroll outage in August 2024?", "larkspur", "2024q3"),
    ("Why did Larkspur record an impairment in Q2 2024?", "larkspur", "2024q2"),
    ("How much cash did Larkspur have at the end of the first quarter of 2023?", "larkspur",
     "2023q1 2024q1"),
    ("What does Larkspur say about exchange rates?", "larkspur", "all"),
    ("What drove the increase in Larkspur's operating expenses in Q2 2023?", "larkspur",
     "2023q2"),
    ("What was Larkspur's Subscription segment revenue in the second quarter of 2024?",
     "larkspur", "2024q2"),
]  # fmt: skip


def questions(names: set[str] | None = None) -> list[tuple[str, set[str]]]:
    """Each question with the file names that answer it, among `names` (default: all)."""
    result = []
    for text, key, quarters in QUESTIONS:
        every = [f"{q.year}q{q.number}" for q in QUARTERS]
        labels = every if quarters == "all" else quarters.split()
        answers = {f"{key}-10q-{label[:4]}-{label[4:]}.pdf" for label in labels}
        if names is not None:
            answers &= names
        if answers:
            result.append((text, answers))
    return result


def write_filings(
    folder: Path,
    companies: tuple[Company, ...] = COMPANIES,
    quarters: tuple[Quarter, ...] = QUARTERS,
) -> list[Path]:
    """Write the filings of the given companies and quarters into `folder`; their paths."""
    from tests.filing_pdf import filing_pdf  # here, not above: it reads this module's text

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for c in companies:
        for q in quarters:
            path = folder / file_name(c, q)
            path.write_bytes(filing_pdf(c, q))
            paths.append(path)
    return paths


def recall(found: list[list[str]], answers: list[set[str]]) -> float:
    """Document recall: the share of questions with a filing that answers them among the file
    names found for them (any one of several answering filings counts)."""
    hits = [bool(answer & set(names)) for names, answer in zip(found, answers, strict=True)]
    return sum(hits) / len(hits)
