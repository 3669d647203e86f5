use super::*;

fn view() -> LbView {
    hostfile::HostTable::from_toml(
        r#"
domain = "example.com"
[[subnet]]
network = "192.168.1.0/24"
[host.web1]
ip = "192.168.1.10"
[host.web2]
ip = "192.168.1.11"
[service.www]
vip = "192.168.1.120"
port = 80
backends = ["web1", "web2"]
[service.api]
vip = "192.168.1.121"
port = 8080
backends = ["web1", "web2"]
"#,
    )
    .unwrap()
    .lb_view()
}

fn weights(v: &LbView) -> Vec<(String, String, u32)> {
    v.services
        .iter()
        .flat_map(|s| {
            s.backends
                .iter()
                .map(|b| (s.name.clone(), b.name.clone(), b.weight))
        })
        .collect()
}

#[test]
fn a_name_drains_it_everywhere_a_service_prefix_only_there() {
    let v = view();
    let mut d = Drains::default();
    d.entries.insert("web1".into());
    d.entries.insert("api/web2".into());
    let w = weights(&d.apply(&v));
    assert!(w.contains(&("www".into(), "web1".into(), 0)), "{w:?}");
    assert!(w.contains(&("api".into(), "web1".into(), 0)), "{w:?}");
    assert!(w.contains(&("api".into(), "web2".into(), 0)), "{w:?}");
    assert!(w.contains(&("www".into(), "web2".into(), 1)), "{w:?}");
    assert_eq!(d.entry_for("api", "web2"), Some("api/web2"));
    assert_eq!(d.entry_for("www", "web1"), Some("web1"));
    assert_eq!(d.entry_for("www", "web2"), None);
}

#[test]
fn the_file_round_trips_and_is_replaced_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state").join("drained");
    assert_eq!(Drains::load(&path).unwrap(), Drains::default());
    let mut d = Drains::default();
    d.entries.insert("web1".into());
    d.entries.insert("www/web2".into());
    d.save(&path).unwrap();
    let back = Drains::load(&path).unwrap();
    assert_eq!(back.entries().collect::<Vec<_>>(), ["web1", "www/web2"]);
    assert!(!path.with_extension("tmp").exists());
    // Junk lines are ignored, not obeyed.
    std::fs::write(&path, "# c\nweb1\n../../etc\nbad name\n\n").unwrap();
    assert_eq!(
        Drains::load(&path).unwrap().entries().collect::<Vec<_>>(),
        ["web1"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_change_the_set_save_it_and_wait_for_the_loop() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("drained");
    let (ctl, mut rx, applied) = Control::new(Drains::default(), Some(file.clone()));
    // The daemon loop's part: apply, then say which generation.
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let g = rx.borrow_and_update().generation;
            applied.send_replace(g);
        }
    });
    let v = view();
    let run = |args: &'static [&'static str]| {
        let (ctl, v) = (ctl.clone(), v.clone());
        tokio::task::spawn_blocking(move || ctl.command(&v, args))
    };
    let a = run(&["drain", "web1"]).await.unwrap();
    assert_eq!(
        a["text"],
        "drained web1 (in api, www): no new connections, established ones finish"
    );
    assert_eq!(
        Drains::load(&file).unwrap().entries().collect::<Vec<_>>(),
        ["web1"]
    );
    let a = run(&["drain", "web1"]).await.unwrap();
    assert_eq!(a["text"], "web1 was already drained");
    let a = run(&["drain", "www/web3"]).await.unwrap();
    assert!(
        a["error"]
            .as_str()
            .unwrap()
            .starts_with("no backend `www/web3` in the host file; backends: api/web1, api/web2"),
        "{a}"
    );
    let a = run(&["undrain", "www/web1"]).await.unwrap();
    assert!(
        a["error"].as_str().unwrap().contains("drained: web1"),
        "{a}"
    );
    let a = run(&["undrain", "web1"]).await.unwrap();
    assert_eq!(a["text"], "undrained web1");
    assert_eq!(Drains::load(&file).unwrap().entries().count(), 0);
    let a = run(&["drain"]).await.unwrap();
    assert!(a["error"].as_str().unwrap().starts_with("usage"), "{a}");
    let a = run(&["drain", "a b/c"]).await.unwrap();
    assert!(a["error"].is_string(), "{a}");
    assert_eq!(ctl.current().generation, 2);
}
