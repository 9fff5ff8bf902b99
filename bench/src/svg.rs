//! SVG pictures of the key figures (people look before they read), written under `docs/`.

/// Write `svg` to `docs/<name>` in the repository and say so on stdout (or why not).
pub fn write_doc(name: &str, svg: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs")
        .join(name);
    match std::fs::write(&path, svg) {
        Ok(()) => println!("\nCDF written to docs/{name}"),
        Err(e) => println!("\nCDF not written to docs/{name}: {e}"),
    }
}

/// Cumulative distributions as an SVG line chart: one line per series (milliseconds on x).
pub fn cdf_svg(title: &str, series: &[(&str, Vec<f64>)]) -> String {
    // The legend column is as wide as its longest label ("name (n=…)", ~7 px a character).
    let longest = series
        .iter()
        .map(|(name, v)| name.chars().count() + v.len().to_string().len() + 5)
        .max()
        .unwrap_or(0) as f64;
    let right = (longest * 7.0 + 50.0).max(160.0);
    let (w, h, left, bottom, top) = (560.0 + right, 400.0, 60.0, 50.0, 40.0);
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(1.0f64, f64::max);
    let x_max = {
        let p = 10f64.powf(max.log10().floor());
        (max / p).ceil() * p
    };
    let sx = |v: f64| left + (v / x_max) * (w - left - right);
    let sy = |p: f64| h - bottom - p * (h - bottom - top);
    let colors = [
        "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
    ];
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{left}\" y=\"22\" font-size=\"15\">{title}</text>\n"
    );
    for i in 0..=5 {
        let v = x_max * i as f64 / 5.0;
        let p = i as f64 / 5.0;
        svg.push_str(&format!(
            "<line x1=\"{x}\" y1=\"{t}\" x2=\"{x}\" y2=\"{b}\" stroke=\"#ddd\"/><text x=\"{x}\" y=\"{ly}\" text-anchor=\"middle\">{v:.0}</text>\n\
             <line x1=\"{left}\" y1=\"{y}\" x2=\"{r}\" y2=\"{y}\" stroke=\"#ddd\"/><text x=\"{lx}\" y=\"{yt}\" text-anchor=\"end\">{p:.1}</text>\n",
            x = sx(v),
            t = top,
            b = h - bottom,
            ly = h - bottom + 16.0,
            y = sy(p),
            r = w - right,
            lx = left - 6.0,
            yt = sy(p) + 4.0,
        ));
    }
    svg.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">milliseconds</text>\n<text x=\"14\" y=\"{}\" transform=\"rotate(-90 14 {})\" text-anchor=\"middle\">fraction of samples ≤ x</text>\n",
        (left + w - right) / 2.0,
        h - 12.0,
        (top + h - bottom) / 2.0,
        (top + h - bottom) / 2.0
    ));
    for (i, (name, values)) in series.iter().enumerate() {
        let mut v = values.clone();
        v.sort_by(f64::total_cmp);
        let color = colors[i % colors.len()];
        let mut points = format!("{:.1},{:.1}", sx(0.0), sy(0.0));
        for (k, x) in v.iter().enumerate() {
            let before = k as f64 / v.len() as f64;
            let after = (k + 1) as f64 / v.len() as f64;
            points.push_str(&format!(
                " {:.1},{:.1} {:.1},{:.1}",
                sx(*x),
                sy(before),
                sx(*x),
                sy(after)
            ));
        }
        svg.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{points}\"/>\n\
             <line x1=\"{lx}\" y1=\"{ly}\" x2=\"{lx2}\" y2=\"{ly}\" stroke=\"{color}\" stroke-width=\"3\"/><text x=\"{tx}\" y=\"{ty}\">{name} (n={n})</text>\n",
            lx = w - right + 12.0,
            lx2 = w - right + 32.0,
            ly = top + 10.0 + 20.0 * i as f64,
            tx = w - right + 38.0,
            ty = top + 14.0 + 20.0 * i as f64,
            n = v.len()
        ));
    }
    svg.push_str("</svg>\n");
    svg
}
