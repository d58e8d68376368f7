"""The monthly report as an administrative document (Nghị định 30/2020/NĐ-CP, Phụ lục I) and its PDF.

The frame: A4 portrait; margins top 20 mm, bottom 20 mm, left 30 mm, right 15 mm (the lower bounds of the
decree's ranges 20–25, 20–25, 30–35, 15–20 mm); page numbers in Arabic digits centred in the top margin, none
on the first page; a serif font covering Vietnamese (Liberation Serif, metric-compatible with Times New Roman),
body 13 pt; the header table (governing body and issuing body, left; quốc hiệu and tiêu ngữ, right), số/ký
hiệu, địa danh and date, the title, then the report, then nơi nhận (left) and the signature block (right).

What differs per province (issuing body, place, signer) comes from a small YAML file (`DocumentConfig.load`);
every key has a default (Phú Yên, the example inventory's province). The PDF is made by WeasyPrint (the one
module that imports it is this one), offline: the only resources the HTML names are the font files found here."""

from __future__ import annotations

import html
import logging
import subprocess
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any

from provsec.errors import CommandError, InputError
from provsec.fileio import read_yaml

NATIONAL_TITLE = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
MOTTO = "Độc lập - Tự do - Hạnh phúc"
FONT_FAMILY = "Liberation Serif"
# ơ ư ạ ệ ộ ỹ: letters that only a font with the Vietnamese ranges has (Debian 12's fonts-liberation 1.07 lacks
# them; fonts-liberation2 has them), so the lookup never settles on a font that would print boxes
VIETNAMESE_PROBE = "01a1 01b0 1ea1 1ec7 1ed9 1ef9"
# the only URLs the PDF may fetch: the report is made offline
LOCAL_SCHEMES = ("file", "data")


@dataclass(frozen=True)
class DocumentConfig:
    """What the frame shows. YAML keys are the field names; any key left out keeps its default."""

    governing_body: str = "UBND TỈNH PHÚ YÊN"  # cơ quan chủ quản (upper line, left)
    issuing_body: str = "SỞ THÔNG TIN VÀ TRUYỀN THÔNG"  # cơ quan ban hành (bold, left)
    number: str = ""  # số; empty: left blank for the văn thư to fill in when registering the document
    code: str = "BC-STTTT"  # ký hiệu: kind of document (BC: báo cáo) - issuing body's abbreviation
    place: str = "Phú Yên"  # địa danh
    title: str = "BÁO CÁO"
    subject: str = "Tình hình bảo đảm an toàn thông tin, giám sát và sao lưu dữ liệu tháng {month}"
    recipients: tuple[str, ...] = ("UBND tỉnh (để báo cáo);", "Giám đốc Sở (để biết);", "Lưu: VT.")
    signer_authority: str = "GIÁM ĐỐC"  # e.g. "KT. GIÁM ĐỐC" + signer_position "PHÓ GIÁM ĐỐC"
    signer_position: str = ""
    signer_name: str = ""

    @classmethod
    def load(cls, path: str | Path | None) -> DocumentConfig:
        if path is None:
            return cls()
        doc = read_yaml(path, "report document settings")
        if doc is None:
            return cls()
        if not isinstance(doc, dict):
            raise InputError(f"{path}: expected a mapping of document settings (issuing_body, place, …)")
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in doc.items():
            if key not in known:
                raise InputError(f"{path}: {key!r} is not a document setting (one of {', '.join(sorted(known))})")
            if key == "recipients":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise InputError(f"{path}: recipients: expected a list of text")
                values[key] = tuple(value)
            elif not isinstance(value, str):
                raise InputError(f"{path}: {key}: expected text, got {value!r}")
            else:
                values[key] = value
        return cls(**values)


def document_date(value: date) -> str:
    """The date as Nghị định 30/2020 writes it: a leading 0 for days below 10 and for months 1 and 2 (so that
    "tháng 1" cannot become "tháng 11"), none for the other months: ngày 05 tháng 3 năm 2026."""
    month = f"{value.month:02d}" if value.month < 3 else str(value.month)
    return f"ngày {value.day:02d} tháng {month} năm {value.year}"


@dataclass(frozen=True)
class Frame:
    config: DocumentConfig
    month_label: str  # "10/2026"
    issued: date
    sections: list[str] = field(default_factory=list)  # HTML bodies, in order
    scope: str = ""  # the agency and/or level the report is restricted to (scope.Scope.caption); "": the province


CSS = """
@page {
  size: A4 portrait;
  margin: 20mm 15mm 20mm 30mm;
  @top-center { content: counter(page); font-family: "Liberation Serif"; font-size: 13pt; }
}
@page :first { @top-center { content: none; } }
html { font-family: "Liberation Serif", serif; font-size: 13pt; line-height: 1.3; color: #000; }
body { margin: 0; }
table.header { width: 100%; border-collapse: collapse; margin-bottom: 6pt; }
table.header td { vertical-align: top; text-align: center; padding: 0; border: none; }
table.header td.left { width: 43%; }
.upper { text-transform: none; font-size: 12pt; }
.bodyname, .national { font-weight: bold; font-size: 12pt; }
.motto { font-weight: bold; font-size: 13pt; }
.rule { border-top: 0.6pt solid #000; width: 35%; margin: 1pt auto 6pt auto; }
.rule.long { width: 62%; }
.number { font-size: 13pt; }
.dateline { font-style: italic; font-size: 13pt; }
h1.doc-title { text-align: center; font-size: 14pt; font-weight: bold; margin: 14pt 0 0 0; }
p.subject { text-align: center; font-weight: bold; font-size: 14pt; margin: 0 0 12pt 0; }
p.scope { text-align: center; font-size: 13pt; margin: -8pt 0 12pt 0; }
section.part h1 { font-size: 14pt; margin: 12pt 0 4pt 0; }
section.part h2 { font-size: 13pt; margin: 10pt 0 4pt 0; }
section.part p { text-align: justify; text-indent: 0; margin: 4pt 0; }
section.part { break-before: auto; }
table { border-collapse: collapse; margin: 4pt 0 8pt 0; font-size: 12pt; }
th, td { border: 0.5pt solid #000; padding: 2pt 5pt; text-align: left; vertical-align: top; }
th { font-weight: bold; }
tr, img, svg { break-inside: avoid; }
td, th { overflow-wrap: break-word; }
th:first-child:nth-last-child(2), td:first-child:nth-last-child(2) { width: 30%; min-width: 30%; }
th:last-child:nth-child(2), td:last-child:nth-child(2) { overflow-wrap: anywhere; }
img { max-width: 100%; }
code, pre, kbd, samp { font-family: "Liberation Serif", serif; font-style: italic; }
table.closing { width: 100%; margin-top: 14pt; break-inside: avoid; }
table.closing td { border: none; vertical-align: top; padding: 0; }
.recipients-title { font-weight: bold; font-style: italic; font-size: 12pt; }
.recipients { font-size: 11pt; }
.sign { text-align: center; font-weight: bold; }
.sign .name { margin-top: 60pt; }
"""


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def frame_html(frame: Frame, font_css: str = "") -> str:
    """The whole document as one HTML page (what the PDF is printed from; also written as HTML)."""
    c = frame.config
    number = c.number or "\u00a0" * 6
    sign = [f"<div>{_e(c.signer_authority)}</div>"]
    if c.signer_position:
        sign.append(f"<div>{_e(c.signer_position)}</div>")
    sign.append(f'<div class="name">{_e(c.signer_name) or "&nbsp;"}</div>')
    recipients = "".join(f"<div>- {_e(r)}</div>" for r in c.recipients)
    parts = "\n".join(f'<section class="part">{s}</section>' for s in frame.sections)
    return f"""<!DOCTYPE html>
<html lang="vi"><head><meta charset="utf-8"><title>{_e(c.title)} {_e(frame.month_label)}</title>
<style>{font_css}{CSS}</style></head><body>
<table class="header"><tr>
<td class="left"><div class="upper">{_e(c.governing_body)}</div><div class="bodyname">{_e(c.issuing_body)}</div>
<div class="rule"></div><div class="number">Số: {number}/{_e(c.code)}</div></td>
<td class="right"><div class="national">{NATIONAL_TITLE}</div><div class="motto">{MOTTO}</div>
<div class="rule long"></div>
<div class="dateline">{_e(c.place)}, {document_date(frame.issued)}</div></td>
</tr></table>
<h1 class="doc-title">{_e(c.title)}</h1>
<p class="subject">{_e(c.subject.replace("{month}", frame.month_label))}</p>
{f'<p class="scope">{_e(frame.scope)}</p>' if frame.scope else ""}
{parts}
<table class="closing"><tr>
<td style="width:50%"><div class="recipients-title">Nơi nhận:</div><div class="recipients">{recipients}</div></td>
<td class="sign">{"".join(sign)}</td>
</tr></table>
</body></html>
"""


def font_files(family: str = FONT_FAMILY, probe: str = VIETNAMESE_PROBE) -> dict[tuple[str, str], Path]:
    """(weight, style) → the file of `family` that has the Vietnamese letters, through fontconfig (fc-list).
    Missing: a CommandError saying which package brings it (a PDF in a fallback font would not look like the
    administrative document, or would print boxes)."""
    try:
        out = subprocess.run(["fc-list", "--format", "%{file}\t%{style}\n", f"{family}:charset={probe}"],
                             check=True, capture_output=True, text=True, timeout=30).stdout
    except FileNotFoundError:
        raise CommandError("fc-list not found: install Debian's fontconfig (scripts/bootstrap)") from None
    except subprocess.CalledProcessError as exc:
        raise CommandError(f"fc-list failed: {exc.stderr.strip()}") from None
    found: dict[tuple[str, str], Path] = {}
    for line in sorted(out.splitlines()):
        path, _, style = line.partition("\t")
        key = ("bold" if "Bold" in style else "normal",
               "italic" if "Italic" in style or "Oblique" in style else "normal")
        found.setdefault(key, Path(path))
    if ("normal", "normal") not in found:
        raise CommandError(f"no {family} font with the Vietnamese letters (ơ ư ạ ệ ộ ỹ): install Debian's "
                           "fonts-liberation2 (Debian 12's fonts-liberation lacks them; scripts/bootstrap)")
    return found


def font_face_css(files: dict[tuple[str, str], Path], family: str = FONT_FAMILY) -> str:
    return "".join(f'@font-face {{ font-family: "{family}"; font-weight: {w}; font-style: {s}; '
                   f'src: url("{p.as_uri()}"); }}\n' for (w, s), p in sorted(files.items()))


def _url_fetcher(weasyprint: Any, refused: list[str]) -> Any:
    """A URL fetcher for `weasyprint` that fetches only local `file:` and `data:` URLs; every URL it did not
    fetch (refused, or failing) is added to `refused`, so that write_pdf fails instead of printing a document
    without it (WeasyPrint itself only logs a warning and leaves the resource out).

    Chosen by what the installed WeasyPrint has, not by its version number: from WeasyPrint 68 a subclass of
    `URLFetcher` overriding `fetch` (69 removed the `default_url_fetcher` function, and a plain function is no
    longer a valid fetcher); before 68 a function calling `default_url_fetcher`."""

    def check(url: str) -> None:
        scheme = url.partition(":")[0].lower()
        if scheme not in LOCAL_SCHEMES:
            raise ValueError(f"refusing to fetch {url}: the report is made offline")

    base = getattr(weasyprint, "URLFetcher", None)
    if base is not None:

        class LocalFetcher(base):  # type: ignore[misc,valid-type]  # WeasyPrint is untyped
            def fetch(self, url: str, headers: Any = None) -> Any:
                try:
                    check(url)
                    return super().fetch(url, headers)
                except Exception:
                    refused.append(url)
                    raise

        # not allowed_protocols: WeasyPrint 68 reads the scheme as the text before "://", refusing every data: URL
        return LocalFetcher(allow_redirects=False)

    default = weasyprint.default_url_fetcher

    def local_only(url: str, *args: Any, **kwargs: Any) -> Any:
        try:
            check(url)
            return default(url, *args, **kwargs)
        except Exception:
            refused.append(url)
            raise

    return local_only


class _Warnings(logging.Handler):
    """WeasyPrint's warnings during one rendering (a font face it could not load, a resource left out)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def write_pdf(document_html: str, target: Path) -> None:
    """Print the HTML to `target` with WeasyPrint (the call point of this module); fonts are embedded
    (subset). Only local `file:` and `data:` URLs are fetched: the report is made offline. A resource that
    could not be fetched (an image from the web in a notebook's output, a missing file) is an InputError naming
    it, a font face WeasyPrint could not load a CommandError; either way nothing is written: a PDF without it
    would pass for the report."""
    import weasyprint

    refused: list[str] = []
    fetcher = _url_fetcher(weasyprint, refused)
    warnings = _Warnings()
    logger = logging.getLogger("weasyprint")
    logger.addHandler(warnings)
    try:
        document = weasyprint.HTML(string=document_html, base_url=target.parent.resolve().as_uri() + "/",
                                   url_fetcher=fetcher).render()
    finally:
        logger.removeHandler(warnings)
    if refused:
        # a data: URL can be megabytes long: its start says what it was
        shown = [url[:40] + "…" if url.startswith("data:") and len(url) > 40 else url
                 for url in dict.fromkeys(refused)]
        raise InputError(f"the report names {len(shown)} resource(s) that were not fetched (only local files "
                         f"and data: URLs are, offline): {', '.join(shown)}")
    fonts = [m for m in warnings.messages if m.startswith("Font-face")]
    if fonts:
        raise CommandError(f"WeasyPrint: {fonts[0]}: the PDF would not use the font files found by fc-list")
    document.write_pdf(str(target))
