//! The weekly report as PDF, drawn with printpdf and the PDF standard fonts (Helvetica), which
//! every PDF reader carries: nothing to bundle, download or install.
//!
//! Layout: A4 pages, a text cursor that starts a new page when it reaches the bottom margin,
//! word wrapping by an average Helvetica glyph width, and bar charts drawn as rectangles. The
//! standard fonts cover Latin-1 only, so other characters are replaced by '?'.
//!
//! [`Writer`] is public so other reports (the drill's after-action report in `ward`) draw with
//! the same cursor, headings and charts; its API speaks millimetres and RGB triples only, so
//! users need no printpdf types.

use std::io::BufWriter;

use printpdf::{BuiltinFont, Color, IndirectFontRef, Line, Mm, PdfDocument, PdfDocumentReference, PdfLayerReference, Point, Rect, Rgb};

use crate::report::{Row, WeeklyReport};

/// A4 width and height, and the margin on every side, in mm.
pub const PAGE_W: f32 = 210.0;
pub const PAGE_H: f32 = 297.0;
pub const MARGIN: f32 = 18.0;
/// Average Helvetica advance as a share of the font size (a safe over-estimate for wrapping).
const AVG_GLYPH_EM: f32 = 0.52;
/// Points to millimetres.
const PT_MM: f32 = 0.3528;

/// A PDF being written top to bottom: a text cursor (`y`, mm from the page's bottom) on the
/// current page, Helvetica regular and bold, and a new page whenever the cursor reaches the
/// bottom margin.
pub struct Writer {
    doc: PdfDocumentReference,
    layer: PdfLayerReference,
    regular: IndirectFontRef,
    bold: IndirectFontRef,
    y: f32,
    pages: usize,
}

/// `text` in the standard fonts' Latin-1: newlines become spaces, anything else outside it '?'.
pub fn latin1(text: &str) -> String {
    text.chars().map(|c| if (c as u32) < 0x100 && !c.is_control() { c } else if c == '\n' { ' ' } else { '?' }).collect()
}

impl Writer {
    /// An empty document of one A4 page with this title.
    pub fn new(title: &str) -> Result<Writer, String> {
        let (doc, page, layer) = PdfDocument::new(title, Mm(PAGE_W), Mm(PAGE_H), "report");
        let regular = doc.add_builtin_font(BuiltinFont::Helvetica).map_err(|e| e.to_string())?;
        let bold = doc.add_builtin_font(BuiltinFont::HelveticaBold).map_err(|e| e.to_string())?;
        let layer = doc.get_page(page).get_layer(layer);
        Ok(Writer { doc, layer, regular, bold, y: PAGE_H - MARGIN, pages: 1 })
    }

    /// Start a new page; the cursor goes to its top margin.
    pub fn new_page(&mut self) {
        let (page, layer) = self.doc.add_page(Mm(PAGE_W), Mm(PAGE_H), "report");
        self.layer = self.doc.get_page(page).get_layer(layer);
        self.y = PAGE_H - MARGIN;
        self.pages += 1;
    }

    /// Start a new page unless `mm` fit above the bottom margin.
    pub fn need(&mut self, mm: f32) {
        if self.y - mm < MARGIN {
            self.new_page();
        }
    }

    /// Wrapped text at `indent` mm from the left margin.
    pub fn text(&mut self, text: &str, size: f32, bold: bool, indent: f32) {
        let width = PAGE_W - 2.0 * MARGIN - indent;
        let per_line = ((width / (size * AVG_GLYPH_EM * PT_MM)) as usize).max(10);
        let line_h = size * PT_MM * 1.35;
        let mut line = String::new();
        let mut lines = Vec::new();
        for word in latin1(text).split_whitespace() {
            let mut word = word.to_string();
            while word.chars().count() > per_line {
                let head: String = word.chars().take(per_line).collect();
                word = word.chars().skip(per_line).collect();
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                lines.push(head);
            }
            if line.chars().count() + word.chars().count() + 1 > per_line && !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&word);
        }
        if !line.is_empty() {
            lines.push(line);
        }
        for l in lines {
            self.need(line_h);
            self.y -= line_h;
            let font = if bold { &self.bold } else { &self.regular };
            self.layer.use_text(l, size, Mm(MARGIN + indent), Mm(self.y), font);
        }
    }

    /// Move the cursor down `mm`.
    pub fn gap(&mut self, mm: f32) {
        self.y -= mm;
    }

    /// A section heading (14 pt bold), kept with at least some room below it.
    pub fn heading(&mut self, text: &str) {
        self.need(20.0);
        self.gap(4.0);
        self.text(text, 14.0, true, 0.0);
        self.gap(1.5);
    }

    /// One horizontal bar of a bar chart: the label, a bar 100 mm long at `max`, the value.
    pub fn bar(&mut self, label: &str, value: usize, max: usize, rgb: (f32, f32, f32)) {
        self.need(7.0);
        self.y -= 6.0;
        self.layer.use_text(latin1(label), 9.0, Mm(MARGIN), Mm(self.y + 1.0), &self.regular);
        let width = 100.0 * value as f32 / max.max(1) as f32;
        self.layer.set_fill_color(Color::Rgb(Rgb::new(rgb.0, rgb.1, rgb.2, None)));
        if width > 0.0 {
            self.layer.add_rect(Rect::new(Mm(MARGIN + 55.0), Mm(self.y), Mm(MARGIN + 55.0 + width), Mm(self.y + 4.0)));
        }
        self.layer.set_fill_color(Color::Rgb(Rgb::new(0.0, 0.0, 0.0, None)));
        self.layer.use_text(value.to_string(), 9.0, Mm(MARGIN + 57.0 + width), Mm(self.y + 1.0), &self.regular);
    }

    /// The cursor: mm from the bottom of the current page.
    pub fn y(&self) -> f32 {
        self.y
    }

    /// Pages so far.
    pub fn pages(&self) -> usize {
        self.pages
    }

    /// Reserve a block `mm` high below the cursor (on a new page if it does not fit) and move
    /// the cursor below it; returns the block's bottom edge (mm from the page's bottom), for
    /// drawing in it with [`Writer::fill_rect`], [`Writer::polyline`] and [`Writer::text_at`].
    pub fn reserve(&mut self, mm: f32) -> f32 {
        self.need(mm);
        self.y -= mm;
        self.y
    }

    /// A filled rectangle, lower-left corner at (`x`, `y`) mm from the page's lower-left corner.
    pub fn fill_rect(&mut self, x: f32, y: f32, w: f32, h: f32, rgb: (f32, f32, f32)) {
        if w <= 0.0 || h <= 0.0 {
            return;
        }
        self.layer.set_fill_color(Color::Rgb(Rgb::new(rgb.0, rgb.1, rgb.2, None)));
        self.layer.add_rect(Rect::new(Mm(x), Mm(y), Mm(x + w), Mm(y + h)));
        self.layer.set_fill_color(Color::Rgb(Rgb::new(0.0, 0.0, 0.0, None)));
    }

    /// An open line through `points` (mm from the page's lower-left corner), `width` pt thick.
    pub fn polyline(&mut self, points: &[(f32, f32)], rgb: (f32, f32, f32), width: f32) {
        if points.len() < 2 {
            return;
        }
        self.layer.set_outline_color(Color::Rgb(Rgb::new(rgb.0, rgb.1, rgb.2, None)));
        self.layer.set_outline_thickness(width);
        let line = Line { points: points.iter().map(|&(x, y)| (Point::new(Mm(x), Mm(y)), false)).collect(), is_closed: false };
        self.layer.add_line(line);
        self.layer.set_outline_color(Color::Rgb(Rgb::new(0.0, 0.0, 0.0, None)));
        self.layer.set_outline_thickness(1.0);
    }

    /// One line of text (not wrapped) with its baseline at (`x`, `y`) mm.
    pub fn text_at(&mut self, x: f32, y: f32, size: f32, text: &str, bold: bool) {
        let font = if bold { &self.bold } else { &self.regular };
        self.layer.use_text(latin1(text), size, Mm(x), Mm(y), font);
    }

    /// The finished document's bytes.
    pub fn finish(self) -> Result<Vec<u8>, String> {
        let mut bytes = Vec::new();
        {
            let mut out = BufWriter::new(&mut bytes);
            self.doc.save(&mut out).map_err(|e| e.to_string())?;
        }
        Ok(bytes)
    }

    fn rows(&mut self, rows: &[Row]) {
        if rows.is_empty() {
            self.text("None.", 10.0, false, 0.0);
            return;
        }
        for r in rows.iter().take(PDF_MAX_ROWS) {
            self.need(22.0);
            let place = if r.port.is_empty() { r.asset.clone() } else { format!("{}:{}/{}", r.asset, r.port, r.protocol) };
            let kev = if r.known_exploited { " [KEV]" } else { "" };
            let cve = if r.cve.is_empty() { String::new() } else { format!(" ({})", r.cve) };
            self.text(&format!("[{}]{kev} {} - {place}{cve}", r.severity.to_uppercase(), r.name), 10.0, true, 0.0);
            self.text(&r.description, 9.0, false, 4.0);
            self.text(&format!("Seen: {}", r.evidence), 8.0, false, 4.0);
            self.text(&format!("Fix: {}", r.solution), 9.0, false, 4.0);
            let deadline = if r.deadline.is_empty() { "none".to_string() } else if r.overdue { format!("{} (OVERDUE)", r.deadline) } else { r.deadline.clone() };
            self.text(&format!("Deadline: {deadline}. Open {} days (first seen {}).", r.age_days, r.first_seen), 8.0, false, 4.0);
            self.gap(2.0);
        }
        if rows.len() > PDF_MAX_ROWS {
            self.text(&format!("... and {} more: see findings.csv.", rows.len() - PDF_MAX_ROWS), 9.0, false, 0.0);
        }
    }
}

use crate::report::PDF_MAX_ROWS_PUBLIC as PDF_MAX_ROWS;

/// Render the report to PDF bytes.
pub fn render(report: &WeeklyReport) -> Result<Vec<u8>, String> {
    let mut w = Writer::new(&format!("Weekly security report: {}", report.jurisdiction))?;
    w.text("Weekly security report", 20.0, true, 0.0);
    w.text(&format!("{} - week {} to {} - last scan {} - made {} by ward", report.jurisdiction, report.period_start, report.period_end, report.last_scan, report.generated), 10.0, false, 0.0);
    w.gap(2.0);
    w.text("Every weakness ward found on your internet-facing systems and how to fix it, most urgent first. Start at the top.", 10.0, false, 0.0);
    w.heading("Report card");
    for c in &report.card {
        let before = c.last_week.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        w.text(&format!("{}: {} (week before {}; {})", c.label, c.this_week_text, before, c.change), 10.0, false, 0.0);
    }
    w.text(&format!("{} findings open, {} overdue.", report.open_total, report.overdue.len()), 10.0, true, 0.0);
    w.heading("Open findings by severity");
    let counts: Vec<(String, usize)> = report.by_severity.iter().map(|g| (g.severity.clone(), g.rows.len())).collect();
    let max = counts.iter().map(|(_, n)| *n).max().unwrap_or(1);
    for (severity, n) in &counts {
        let rgb = match severity.as_str() {
            "critical" => (0.55, 0.0, 0.0),
            "high" => (0.85, 0.28, 0.06),
            "medium" => (0.88, 0.66, 0.0),
            "low" => (0.1, 0.44, 0.76),
            _ => (0.6, 0.6, 0.6),
        };
        w.bar(severity, *n, max, rgb);
    }
    w.heading("1. Known-exploited vulnerabilities (fix first)");
    if report.kev_checked {
        w.text(&format!("Checked against the {}.", report.kev_catalog), 9.0, false, 0.0);
        w.rows(&report.known_exploited);
    } else {
        w.text("Not checked: the latest scan had no copy of CISA's KEV catalog. Refresh it with `ward scan update-kev` and scan again.", 10.0, true, 0.0);
    }
    w.heading("2. Risky services open to the internet");
    w.rows(&report.risky_services);
    w.heading("3. All findings by severity");
    for g in &report.by_severity {
        w.text(&format!("{} ({})", g.severity, g.rows.len()), 12.0, true, 0.0);
        w.rows(&g.rows);
    }
    w.heading("4. Overdue");
    w.rows(&report.overdue);
    w.heading("Appendix A. New this week");
    w.rows(&report.new);
    w.heading("Appendix B. Fixed this week");
    if report.fixed.is_empty() {
        w.text("None.", 10.0, false, 0.0);
    }
    for r in &report.fixed {
        w.text(&format!("{} {} - first seen {}, fixed {}, {} days to fix", r.asset, r.name, r.first_seen, r.fixed_at, r.days_to_fix), 9.0, false, 0.0);
    }
    w.heading("Appendix C. Still open");
    w.rows(&report.still_open);
    w.heading("Appendix D. Re-detected within 90 days");
    w.rows(&report.redetected);
    w.heading("Methodology");
    w.text("TCP connect scan of nmap's top 1,000 ports plus ward's check ports (or all), IPv4 and IPv6, SNMP over UDP; service identification from banners and protocol answers; TLS, HTTP, mail-domain and default-password checks (at most 4 attempts per service); product versions compared with a vulnerability list joined to CISA's Known Exploited Vulnerabilities catalog. A version match is never certain: check your vendor's changelog for back-ported fixes. Trend charts are in report.html; all findings are in findings.csv.", 9.0, false, 0.0);
    w.text(&format!("Known-exploited status: {}.", report.kev_catalog), 9.0, false, 0.0);
    w.finish()
}
