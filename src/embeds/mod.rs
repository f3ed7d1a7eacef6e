//! Embeds for static sites: the SVG badge. (The one-line script is a static asset,
//! `public/embed.js`.)

pub mod badge;
pub mod glyph_widths;
