use super::*;

fn three() -> Vec<NavLink> {
    ["dhcpd", "dnsd", "lbd"]
        .iter()
        .enumerate()
        .map(|(i, d)| NavLink {
            label: (*d).to_owned(),
            href: format!("http://10.0.0.1:910{i}/"),
        })
        .collect()
}

#[test]
fn values_with_markup_are_shown_as_text() {
    let evil = "<script>alert(1)</script>";
    let nav = three();
    let page = render(
        &Layout {
            daemon: "dhcpd",
            title: "dhcpd on \"gw\" <b>",
            nav: &nav,
        },
        html! { table { tr { td { (evil) } } } },
    );
    assert!(
        page.contains("<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>"),
        "{page}"
    );
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(page.contains("<title>dhcpd on &quot;gw&quot; &lt;b&gt;</title>"));
    // The only script is the page's own file.
    assert_eq!(page.matches("<script").count(), 1);
    assert!(page.contains(r#"<script src="page.js" defer></script>"#));
}

#[test]
fn header_links_the_daemons_and_the_own_page_is_relative() {
    let nav = three();
    let page = render(
        &Layout {
            daemon: "dnsd",
            title: "dnsd",
            nav: &nav,
        },
        html! { p { "hi" } },
    );
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(
        page.contains(r#"<a href="http://10.0.0.1:9100/">dhcpd</a>"#),
        "{page}"
    );
    assert!(
        page.contains(r#"<a href="./" aria-current="page">dnsd</a>"#),
        "{page}"
    );
    assert!(page.contains(r#"<a href="http://10.0.0.1:9102/">lbd</a>"#));
    assert!(
        page.contains(r#"<main id="main"><p>hi</p></main>"#),
        "{page}"
    );
    // Every link of the page to itself is relative: nothing starts with "/".
    for attr in ["href=\"/", "src=\"/"] {
        assert!(!page.contains(attr), "absolute link {attr} in {page}");
    }
    assert!(page.contains(r#"name="viewport""#));
}

#[test]
fn daemon_links_from_metrics_addresses() {
    let a = |s: &str| s.parse::<SocketAddr>().unwrap();
    assert_eq!(
        daemon_href(a("10.1.2.3:9101"), None),
        "http://10.1.2.3:9101/"
    );
    assert_eq!(
        daemon_href(a("[fd00::1]:9101"), None),
        "http://[fd00::1]:9101/"
    );
    assert_eq!(
        daemon_href(a("0.0.0.0:9102"), Some("gw1.lan:9101")),
        "http://gw1.lan:9102/"
    );
    assert_eq!(
        daemon_href(a("[::]:9102"), Some("[fd00::5]:9101")),
        "http://[fd00::5]:9102/"
    );
    assert_eq!(
        daemon_href(a("0.0.0.0:9102"), None),
        "http://localhost:9102/"
    );
}

#[test]
fn bar_parts_add_up_and_are_labelled() {
    let svg = bar(&[
        ("used", 30, "ok"),
        ("declined", 10, "bad"),
        ("free", 60, "idle"),
    ])
    .into_string();
    assert!(
        svg.contains(r#"aria-label="used 30, declined 10, free 60""#),
        "{svg}"
    );
    assert!(svg.contains(r#"x="30.00" width="10.00""#), "{svg}");
    assert!(svg.contains(r#"x="40.00" width="60.00""#), "{svg}");
    let empty = bar(&[("free", 0, "idle")]).into_string();
    assert!(empty.contains(r#"width="0.00""#));
}

#[test]
fn header_links_from_the_host_file() {
    let table = HostTable::from_toml(
        r#"
domain = "lan"
[dhcp]
metrics = "0.0.0.0:9167"
[dns]
metrics = "10.0.0.2:9168"
"#,
    );
    let addrs = daemon_addrs(&table.unwrap());
    assert_eq!(addrs[2], ("lbd", None));
    let links = nav(&addrs, Some("gw1:9167"));
    assert_eq!(
        links,
        [
            NavLink {
                label: "dhcpd".into(),
                href: "http://gw1:9167/".into()
            },
            NavLink {
                label: "dnsd".into(),
                href: "http://10.0.0.2:9168/".into()
            },
        ]
    );
}

#[test]
fn a_stack_tables_head_and_cell_labels_come_from_one_column_list() {
    const COLS: [Column; 3] = [("Address", false), ("Count", true), ("Host <name>", false)];
    let h = head(&COLS).into_string();
    assert_eq!(
        h,
        "<thead><tr><th>Address</th><th class=\"num\">Count</th><th>Host &lt;name&gt;</th></tr></thead>"
    );
    assert_eq!(label(&COLS, 1), "Count");
    // A head without the last column (an admin-only one) keeps the others' headings.
    let short = head(&COLS[..2]).into_string();
    assert!(!short.contains("Host"), "{short}");
    // The style sheet shows a stacked cell's label from its `data-label`.
    let css = include_str!("../assets/page.css");
    assert!(css.contains("content: attr(data-label)"), "{css}");
}
