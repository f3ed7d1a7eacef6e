//! Embeds for static sites: the SVG badge and the one-line script.

pub mod badge;
pub mod glyph_widths;
pub mod script;
