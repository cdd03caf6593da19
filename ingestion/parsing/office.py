"""DOCX, PPTX and XLSX. Every OOXML file is a ZIP: its directory is checked for bombs and its
parts for DTDs (entity expansion, external entities) before any XML parser sees them."""

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingestion.parsing.archive import open_checked
from ingestion.parsing.errors import ParseError
from ingestion.parsing.text import rows_with_headers

if TYPE_CHECKING:
    from ingestion.parsing import Page

MAX_CELLS = 2_000_000


def table_rows(table: Any) -> list[list[str]]:
    rows = []
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:
            if id(cell._tc) in seen:  # a merged cell repeats across the row
                continue
            seen.add(id(cell._tc))
            nested = "\n".join(rows_with_headers(table_rows(t)) for t in cell.tables)
            cells.append(" ".join(filter(None, [cell.text.strip(), nested])))
        rows.append(cells)
    return rows


def parse_docx(path: Path) -> list["Page"]:
    """Body in document order; a new section at each heading; tables as rows with headers."""
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    from ingestion.parsing import Page

    open_checked(path).close()
    try:
        document = docx.Document(str(path))
    except Exception:  # python-docx raises many types for a file that is not OOXML
        raise ParseError("The file is not a valid DOCX document.") from None
    pages: list[Page] = [Page(1, "")]
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            pages[-1].text += rows_with_headers(table_rows(block)) + "\n\n"
        elif isinstance(block, Paragraph) and block.text.strip():
            style = block.style.name if block.style is not None else ""
            if style.startswith(("Heading", "Title")):
                pages.append(Page(1, "", block.text.strip()))
            pages[-1].text += block.text + "\n\n"
    margins = {
        p.text.strip()
        for section in document.sections
        for part in (section.header, section.footer)
        for p in part.paragraphs
        if p.text.strip()
    }
    if margins:  # headers and footers once, not once per page
        pages.append(Page(1, "\n".join(sorted(margins))))
    return [p for p in pages if p.text.strip()]


def shape_texts(shapes: Any) -> list[str]:
    texts = []
    for shape in shapes:
        if shape.shape_type == 6:  # a group: its shapes hold the text
            texts.extend(shape_texts(shape.shapes))
        elif getattr(shape, "has_table", False) and shape.has_table:
            rows = [[cell.text for cell in row.cells] for row in shape.table.rows]
            texts.append(rows_with_headers(rows))
        elif getattr(shape, "has_chart", False) and shape.has_chart:
            chart = shape.chart
            if chart.has_title and chart.chart_title.has_text_frame:
                texts.append(chart.chart_title.text_frame.text)
        elif shape.has_text_frame and shape.text_frame.text.strip():
            texts.append(shape.text_frame.text)
    return texts


def parse_pptx(path: Path) -> list["Page"]:
    """One page per slide (the number citations show), its title as heading, then its notes."""
    from pptx import Presentation

    from ingestion.parsing import Page

    open_checked(path).close()
    try:
        presentation = Presentation(str(path))
    except Exception:
        raise ParseError("The file is not a valid PPTX presentation.") from None
    pages = []
    for number, slide in enumerate(presentation.slides, start=1):
        title = slide.shapes.title.text.strip() if slide.shapes.title is not None else ""
        texts = shape_texts(slide.shapes)
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            notes = slide.notes_slide.notes_text_frame.text.strip()
            if notes:
                texts.append(f"Speaker notes: {notes}")
        pages.append(Page(number, "\n\n".join(texts), title))
    return pages


def cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores every number as a float
    return str(value)


def parse_xlsx(path: Path) -> list["Page"]:
    """One page per sheet, named by the sheet; rows keep their column headers."""
    import openpyxl

    from ingestion.parsing import Page

    open_checked(path).close()
    try:
        # A file object: openpyxl refuses paths without an .xlsx suffix (ours are generated).
        workbook = openpyxl.load_workbook(path.open("rb"), read_only=True, data_only=True)
    except Exception:
        raise ParseError("The file is not a valid XLSX workbook.") from None
    pages, cells = [], 0
    for number, sheet in enumerate(workbook.worksheets, start=1):
        rows = []
        for row in sheet.iter_rows(values_only=True):
            cells += len(row)
            if cells > MAX_CELLS:
                raise ParseError(f"The workbook has more than {MAX_CELLS} cells.")
            rows.append([cell_text(v) for v in row])
        pages.append(Page(number, rows_with_headers(rows), sheet.title))
    workbook.close()
    return pages
