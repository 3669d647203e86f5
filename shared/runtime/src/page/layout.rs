//! The page every daemon shares: document head, a header linking the three daemons, the
//! daemon's content in `<main id="main">`, and a footer.
//!
//! The style sheet and script are separate files next to the page (`page.css`, `page.js`,
//! linked relatively), so the Content-Security-Policy can forbid inline scripts and styles. The
//! script refreshes `<main>` every ten seconds by fetching the page again and swapping the
//! element (no full reload; it pauses while the tab is hidden or a form field in the page has
//! the focus); without JavaScript the page is complete and the footer's link reloads it.
//!
//! Classes the style sheet knows, for the daemons' content: `section` (a card with an `h2`),
//! `div.stats > div.stat` (a figure: label then `b` value), `div.plots` (a grid of
//! [`super::plot::line_plot`]s: one column on a phone), `div.scroll > table` (tables scroll
//! sideways on a narrow screen; `td.num` right-aligned figures, `td.wrap` free text such as host
//! names that may wrap; `table.stack`, each `td` with a `data-label` naming its column: on a
//! phone each row becomes a card, one labelled cell a line, and nothing scrolls: write its head
//! with [`head`] and each cell's label with [`label`] from one list of [`Column`]s),
//! `form.search`, `div.pager`, `.muted`, and states `.ok`, `.warn`, `.bad` (also the parts of a
//! [`bar`], with `idle`).

use std::net::SocketAddr;

use hostfile::HostTable;
use maud::{DOCTYPE, Markup, html};

/// A link in the header to one daemon's page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NavLink {
    /// The daemon's name, e.g. `"dhcpd"`.
    pub label: String,
    /// Where its page is, e.g. from [`daemon_href`]. The current daemon's own link is replaced by
    /// `./` (relative, so it stays behind a reverse proxy).
    pub href: String,
}

/// What the common page needs to know.
#[derive(Clone, Copy, Debug)]
pub struct Layout<'a> {
    /// The daemon serving the page, e.g. `"dhcpd"`: marked as current in the header.
    pub daemon: &'a str,
    /// The document's title and heading, e.g. `"dhcpd on gw1"`.
    pub title: &'a str,
    /// The three daemons' pages (those with `metrics` set), in the order shown.
    pub nav: &'a [NavLink],
}

/// The whole document, with `main` as the content of `<main id="main">`.
pub fn render(layout: &Layout<'_>, main: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (layout.title) }
                // No icon: keeps the browser from asking for /favicon.ico outside a path prefix.
                link rel="icon" href="data:,";
                link rel="stylesheet" href="page.css";
                script src="page.js" defer {}
            }
            body {
                header {
                    nav aria-label="daemons" {
                        span.brand { "lansuite" }
                        @for link in layout.nav {
                            @if link.label == layout.daemon {
                                a href="./" aria-current="page" { (link.label) }
                            } @else {
                                a href=(link.href) { (link.label) }
                            }
                        }
                        a.metrics href="metrics" { "metrics" }
                    }
                }
                h1 { (layout.title) }
                main #main {
                    (main)
                }
                footer {
                    span #live { "Live refresh needs JavaScript. " }
                    a href="" { "Reload" }
                }
            }
        }
    }
    .into_string()
}

/// The link to a daemon's page from its metrics address. An unspecified address (`0.0.0.0`,
/// `::`) is reached on the host the browser used for this page (`request_host`, the `Host`
/// header, without its port), or `localhost` without one.
pub fn daemon_href(addr: SocketAddr, request_host: Option<&str>) -> String {
    if !addr.ip().is_unspecified() {
        return format!("http://{addr}/");
    }
    let host = request_host
        .map(|h| match h.strip_prefix('[') {
            Some(rest) => rest.split_once(']').map_or(h, |(ip, _)| &h[..ip.len() + 2]),
            None => h.split(':').next().unwrap_or(h),
        })
        .filter(|h| !h.is_empty())
        .unwrap_or("localhost");
    format!("http://{host}:{}/", addr.port())
}

/// The three daemons' metrics addresses from the host file, in header order (`None`: that
/// daemon has no `metrics`, hence no page). Take it at start and on reload, not per request.
pub fn daemon_addrs(table: &HostTable) -> [(&'static str, Option<SocketAddr>); 3] {
    [
        ("dhcpd", table.dhcp_view().metrics),
        ("dnsd", table.dns_view().metrics),
        ("lbd", table.lb_view().metrics),
    ]
}

/// The header's links for `addrs` ([`daemon_addrs`]), skipping daemons without a page; an
/// unspecified address is taken to be on the host the browser asked (`request_host`, see
/// [`daemon_href`]).
pub fn nav(addrs: &[(&str, Option<SocketAddr>)], request_host: Option<&str>) -> Vec<NavLink> {
    addrs
        .iter()
        .filter_map(|(label, addr)| {
            addr.map(|a| NavLink {
                label: (*label).to_owned(),
                href: daemon_href(a, request_host),
            })
        })
        .collect()
}

/// A `table.stack`'s column: its heading, and whether its cells are figures (`num`: right
/// aligned on a wide screen).
pub type Column = (&'static str, bool);

/// The head of a `table.stack` (any table) with the columns `cols`.
pub fn head(cols: &[Column]) -> Markup {
    html! {
        thead { tr { @for (h, num) in cols { th class=[num.then_some("num")] { (h) } } } }
    }
}

/// Column `k`'s heading, for its cells' `data-label`: on a phone a `table.stack` shows each row
/// as a card, each cell on its own line after this label.
pub fn label(cols: &[Column], k: usize) -> &'static str {
    cols[k].0
}

/// A horizontal bar of parts of a whole (pool usage: used, offered, declined, free), as SVG with
/// a text equivalent. `parts` are (label, value, CSS class among `ok`, `warn`, `bad`, `idle`).
pub fn bar(parts: &[(&str, u64, &str)]) -> Markup {
    let total: u64 = parts.iter().map(|p| p.1).sum();
    let mut x = 0.0_f64;
    let mut rects = Vec::new();
    for &(label, value, class) in parts {
        let w = if total == 0 {
            0.0
        } else {
            100.0 * value as f64 / total as f64
        };
        rects.push((label, value, class, x, w));
        x += w;
    }
    let text: Vec<String> = parts.iter().map(|(l, v, _)| format!("{l} {v}")).collect();
    html! {
        svg.bar viewBox="0 0 100 6" preserveAspectRatio="none" role="img"
            aria-label=(text.join(", ")) {
            @for (label, value, class, x, w) in &rects {
                rect class=(class) x=(format!("{x:.2}")) width=(format!("{w:.2}")) height="6" {
                    title { (label) " " (value) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
