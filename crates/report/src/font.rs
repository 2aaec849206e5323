//! The bundled font (Roboto Regular, Apache-2.0; see `assets/fonts/README.md`).
//!
//! Figures never depend on system fonts: plotters measures text with these bytes (ab_glyph),
//! resvg rasterises PNGs with them, svg2pdf embeds a subset of them into PDFs and `report.html`
//! embeds them as a base64 `@font-face`.
use std::sync::{Arc, Once, OnceLock};

use plotters::style::FontStyle;
use resvg::usvg::fontdb;

/// The TTF bytes of Roboto Regular.
pub const FONT_TTF: &[u8] = include_bytes!("../assets/fonts/Roboto-Regular.ttf");

/// The family name inside [`FONT_TTF`].
pub const FONT_NAME: &str = "Roboto";

/// The CSS `font-family` list written into every SVG `<text>`: the bundled font first, then
/// fallbacks a viewer without it (an SVG opened on its own) will have.
///
/// plotters writes the family string verbatim into the SVG and looks fonts up by that exact
/// string, so the bundled font is registered under this whole list.
pub const FONT_FAMILY: &str = "Roboto, Helvetica, Arial, sans-serif";

static REGISTER: Once = Once::new();

/// Registers the bundled font with plotters' ab_glyph text engine (idempotent).
///
/// Every figure function calls this; call it yourself only when you draw with plotters directly
/// using [`FONT_FAMILY`].
pub fn register_font() {
    REGISTER.call_once(|| {
        // The bytes are a valid TTF compiled into the crate; a test checks registration works,
        // so a failure here can only be a broken build and is ignored rather than panicking.
        for style in [FontStyle::Normal, FontStyle::Bold] {
            let _ = plotters::style::register_font(FONT_FAMILY, style, FONT_TTF);
        }
    });
}

/// A font database holding only the bundled font, with every generic family mapped to it.
pub fn font_database() -> Arc<fontdb::Database> {
    static DB: OnceLock<Arc<fontdb::Database>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = fontdb::Database::new();
        db.load_font_data(FONT_TTF.to_vec());
        db.set_sans_serif_family(FONT_NAME);
        db.set_serif_family(FONT_NAME);
        db.set_monospace_family(FONT_NAME);
        db.set_cursive_family(FONT_NAME);
        db.set_fantasy_family(FONT_NAME);
        Arc::new(db)
    })
    .clone()
}
