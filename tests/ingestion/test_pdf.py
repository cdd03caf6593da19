"""PDF text from PDFium in the parse child: pages pypdf refused, table rows on one line, prose
columns apart, real PDFs."""

import io
import zlib
from pathlib import Path

import pytest

from ingestion.parsing import Encrypted
from tests.conftest import shared_fixture
from tests.factories import build_pdf, make_pdf
from tests.ingestion.test_parsing import parse, text_of, write

CAPTION = "Daily closing price of the share, 2019 to 2023"


def make_chart_pdf(segments: int) -> bytes:
    """One page: a caption over a line chart drawn as one path of many segments."""
    path = b"".join(
        b"%d %d l\n" % (72 + i * 468 // segments, 300 + i * 7919 % 200) for i in range(segments)
    )
    text = b"BT /F1 12 Tf 72 720 Td (%s) Tj ET\n0.1 w 72 300 m\n" % CAPTION.encode()
    stream = zlib.compress(text + path + b"S\n")
    return build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
            b" /Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream)
            + stream
            + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    )


def test_a_page_with_a_detailed_chart_is_read(tmp_path: Path) -> None:
    # 2.1 million tokens in one 240 KB content stream: past pypdf's budget of 2 million, which
    # refused it as "inflates to more data than allowed"; PDFium reads it in a fraction of a second.
    pages = parse(write(tmp_path, "chart.pdf", make_chart_pdf(700_000)))
    assert [(p.number, p.text) for p in pages] == [(1, CAPTION)]


ROWS = [
    ["", "2024", "2023"],
    ["Total revenue", "1,234", "1,100"],
    ["Cost of revenue", "(456)", "(400)"],
    ["Net income", "778", "700"],
]
LINES = [
    "2024 2023",
    "Total revenue 1,234 1,100",
    "Cost of revenue (456) (400)",
    "Net income 778 700",
]


def table_by_rows() -> bytes:
    """reportlab's own table: a cell at a time, row by row."""
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Table

    buffer = io.BytesIO()
    heading = Paragraph("Consolidated statements of operations", getSampleStyleSheet()["Normal"])
    SimpleDocTemplate(buffer).build([heading, Table(ROWS, colWidths=[200, 80, 80])])
    return buffer.getvalue()


def table_by_columns() -> bytes:
    """The same table written a column at a time, as some report generators do."""
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.drawString(50, 800, "Consolidated statements of operations")
    pdf.drawRightString(360, 784, "2024")
    pdf.drawRightString(440, 784, "2023")
    for x, column in ((50, 0), (360, 1), (440, 2)):  # the labels, then each column of figures
        draw = pdf.drawRightString if column else pdf.drawString
        for y, row in zip((768, 752, 736), ROWS[1:], strict=True):
            draw(x, y, row[column])
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


@pytest.mark.parametrize("make", [table_by_rows, table_by_columns])
def test_a_table_row_stays_on_one_line_with_its_label(tmp_path: Path, make) -> None:
    [page] = parse(write(tmp_path, "statement.pdf", make()))
    assert page.text.splitlines() == ["Consolidated statements of operations", *LINES]


def test_two_columns_of_prose_are_not_interleaved(tmp_path: Path) -> None:
    from reportlab.pdfgen import canvas

    left = [f"Left column line {n} says something long enough to fill it." for n in range(1, 6)]
    right = [f"Right column line {n} says something else just as long." for n in range(1, 6)]
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    for x, lines in ((40, left), (320, right)):
        for n, line in enumerate(lines):
            pdf.drawString(x, 780 - 14 * n, line)
    pdf.showPage()
    pdf.save()
    [page] = parse(write(tmp_path, "columns.pdf", buffer.getvalue()))
    assert page.text.splitlines() == left + right


def test_page_numbers_are_physical_pages(tmp_path: Path) -> None:
    pdf = make_pdf(["Cover page of the report.", "", "Third page, after a blank one."])
    pages = parse(write(tmp_path, "blank.pdf", pdf))
    assert [(p.number, p.text) for p in pages] == [
        (1, "Cover page of the report."),
        (3, "Third page, after a blank one."),
    ]


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("2305.03393v1-pg9.pdf", "Optimized Table Tokenization"),
        ("DA-619p.pdf", "MAIN GAME"),
        ("copy-protected.pdf", "LayoutParser"),
        ("fake-memo.pdf", "There were 20,000 bottle"),
        ("korean-text-with-tables.pdf", "서비스 제공 기준"),
        ("layout-parser-paper-fast.pdf", "Unified Toolkit"),
        ("multi-column-2p.pdf", "Dense Passage Retrieval"),
        ("pdf-bad-color-space.pdf", "2023 Environmental Report"),
        ("pdf-with-ocr-text.pdf", "progress of the Foundation"),
        ("pdflatex-forms.pdf", "Submit"),
        ("redp5110_sampled.pdf", "Row and Column Access"),
        ("right_to_left_01.pdf", "Python"),
        ("single_table.pdf", "total chunks"),  # a picture: through OCR
    ],
)
def test_the_real_fixture_pdfs_parse(name: str, needle: str) -> None:
    assert needle in text_of(parse(shared_fixture(f"pdf/{name}")))


@pytest.mark.parametrize(
    ("relative", "count"),
    [
        ("us-fed-agency-reports/2022-annual-performance-report.pdf", 106),
        ("nih-clinical-trial-protocols/NCT06153992_ICF_001.pdf", 9),
        ("ntsb-aviation-incident-accident-reports/20080111X00040.pdf", 4),
    ],
)
def test_long_real_pdfs_parse_page_by_page(relative: str, count: int) -> None:
    pages = parse(shared_fixture(f"../long-pdfs/{relative}"))
    assert [p.number for p in pages] == list(range(1, count + 1))


def test_a_real_table_written_column_by_column_keeps_its_rows() -> None:
    pages = parse(shared_fixture("../long-pdfs/us-fed-agency-reports/EDAPP2022.pdf"))
    assert pages[7].number == 8
    assert "Target Decreasing 2020-10-01 2021-09-30 12" in pages[7].text.splitlines()
    assert "Actual Baseline 2019-10-01 2020-09-30 13" in pages[7].text.splitlines()


def test_the_real_encrypted_pdf_keeps_its_status() -> None:
    """Reliability #20: a real encrypted PDF ends encrypted."""
    with pytest.raises(Encrypted, match=r"^The PDF is encrypted \(password-protected\)\.$"):
        parse(shared_fixture("pdf/libreoffice-writer-password.pdf"))
