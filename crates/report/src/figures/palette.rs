//! Colour-blind-safe colours: Okabe–Ito for categories, viridis for "low → high", a
//! blue–white–orange diverging map for signed values and a white→blue ramp for fractions.
use plotters::style::RGBColor;

/// Okabe & Ito (2008) qualitative palette, black first.
pub const OKABE_ITO: [RGBColor; 8] = [
    RGBColor(0x00, 0x00, 0x00),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xF0, 0xE4, 0x42),
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0xCC, 0x79, 0xA7),
];

/// Okabe–Ito blue: negative SHAP contributions, single-series bars.
pub const BLUE: RGBColor = RGBColor(0x00, 0x72, 0xB2);
/// Okabe–Ito vermillion: positive SHAP contributions.
pub const VERMILLION: RGBColor = RGBColor(0xD5, 0x5E, 0x00);
/// Okabe–Ito orange: second series.
pub const ORANGE: RGBColor = RGBColor(0xE6, 0x9F, 0x00);
/// Okabe–Ito bluish green: third series.
pub const GREEN: RGBColor = RGBColor(0x00, 0x9E, 0x73);
/// Neutral grey for axes and annotations.
pub const GREY: RGBColor = RGBColor(0x55, 0x55, 0x55);

/// Series colours (Okabe–Ito without black and yellow, which are hard to see as lines).
pub const SERIES: [RGBColor; 6] = [
    BLUE,
    VERMILLION,
    GREEN,
    ORANGE,
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0x56, 0xB4, 0xE9),
];

// viridis sampled at 11 evenly spaced points (matplotlib's `viridis`).
const VIRIDIS: [(u8, u8, u8); 11] = [
    (68, 1, 84),
    (72, 36, 117),
    (65, 68, 135),
    (53, 95, 141),
    (42, 120, 142),
    (33, 145, 140),
    (34, 168, 132),
    (68, 191, 112),
    (122, 209, 81),
    (189, 223, 38),
    (253, 231, 37),
];

fn lerp(a: (u8, u8, u8), b: (u8, u8, u8), t: f64) -> RGBColor {
    let f = |x: u8, y: u8| {
        (x as f64 + (y as f64 - x as f64) * t)
            .round()
            .clamp(0.0, 255.0) as u8
    };
    RGBColor(f(a.0, b.0), f(a.1, b.1), f(a.2, b.2))
}

fn ramp(stops: &[(u8, u8, u8)], t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pos = t * (stops.len() - 1) as f64;
    let i = (pos.floor() as usize).min(stops.len() - 2);
    lerp(stops[i], stops[i + 1], pos - i as f64)
}

/// viridis at `t` ∈ [0, 1] (dark purple → yellow); perceptually uniform and colour-blind-safe.
pub fn viridis(t: f64) -> RGBColor {
    ramp(&VIRIDIS, t)
}

/// White → dark blue at `t` ∈ [0, 1] (lightness-monotone, so readable without hue).
pub fn blues(t: f64) -> RGBColor {
    ramp(
        &[
            (255, 255, 255),
            (198, 219, 239),
            (107, 174, 214),
            (33, 113, 181),
            (8, 48, 107),
        ],
        t,
    )
}

/// Blue → white → orange-red at `t` ∈ [-1, 1] (diverging, colour-blind-safe).
pub fn diverging(t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    ramp(
        &[
            (0, 90, 160),
            (0, 114, 178),
            (255, 255, 255),
            (213, 94, 0),
            (160, 60, 0),
        ],
        (t + 1.0) / 2.0,
    )
}

/// Category colour `i` of `n`: Okabe–Ito for up to 7, viridis samples beyond, visited with a
/// stride of about n/3 so that neighbouring classes (DrDoS_DNS, DrDoS_LDAP, …) get distant
/// colours.
pub fn category(i: usize, n: usize) -> RGBColor {
    if n < OKABE_ITO.len() {
        return OKABE_ITO[1 + i % (OKABE_ITO.len() - 1)];
    }
    fn gcd(a: usize, b: usize) -> usize {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    let stride = (n / 3..n).find(|&s| s > 0 && gcd(s, n) == 1).unwrap_or(1);
    viridis(((i % n) * stride % n) as f64 / (n - 1) as f64)
}

/// Black or white, whichever reads better on `bg`.
pub fn text_on(bg: RGBColor) -> RGBColor {
    let l = 0.2126 * bg.0 as f64 + 0.7152 * bg.1 as f64 + 0.0722 * bg.2 as f64;
    if l > 140.0 {
        RGBColor(0, 0, 0)
    } else {
        RGBColor(255, 255, 255)
    }
}
