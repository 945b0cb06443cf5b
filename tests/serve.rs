//! `rolegate serve` as a real process: the dev issuer end to end, the decision log on stderr
//! (never the token), and a graceful stop on SIGTERM.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::root;
use common::upstream::{free_port, request, Upstream};
use rolegate::gateway::server::wait_listening;

const SECRET: &str = "serve-test-secret";

fn token(role: &str, tenant: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .args([
            "token",
            "--config",
            "config/enterprise.yaml",
            "--sub",
            "alice",
            "--tenant",
            tenant,
            "--role",
            role,
        ])
        .current_dir(root())
        .env("ROLEGATE_DEV_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn serve_answers_with_the_dev_issuer_logs_decisions_and_stops_on_sigterm() {
    let upstream = Upstream::start();
    let (proxy, admin) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .args([
            "serve",
            "--config",
            "config/enterprise.yaml",
            "--listen",
            &proxy,
            "--admin",
            &admin,
        ])
        .args(["--upstream", &format!("http://{}", upstream.addr)])
        .current_dir(root())
        .env("ROLEGATE_DEV_SECRET", SECRET)
        // pingora prints request headers at trace: the token must still never reach the log.
        .env(
            "ROLEGATE_LOG",
            "info,pingora=trace,pingora_core=trace,pingora_proxy=trace",
        )
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_listening(&proxy).unwrap();
    wait_listening(&admin).unwrap();
    assert_eq!(request(&admin, "GET", "/readyz", &[]).status, 200);

    let admin_token = token("Company Admin", "acme");
    let auth = format!("Bearer {admin_token}");
    let r = request(
        &proxy,
        "DELETE",
        "/api/tenants/acme/services/42",
        &[("authorization", &auth)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        upstream.last().header("x-auth-action"),
        vec!["service.delete"]
    );
    let reader = format!("Bearer {}", token("Read Only", "acme"));
    assert_eq!(
        request(
            &proxy,
            "DELETE",
            "/api/tenants/acme/services/42",
            &[("authorization", &reader)]
        )
        .status,
        403
    );
    // A token that fails verification: 401, logged with the canonical path, never the token.
    let forged = format!("{}x", token("Company Admin", "acme"));
    let forged_auth = format!("Bearer {forged}");
    assert_eq!(
        request(
            &proxy,
            "GET",
            "/api/tenants/acme/./services/42",
            &[("authorization", &forged_auth)]
        )
        .status,
        401
    );

    let pid = child.id().to_string();
    let started = Instant::now();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "still running 20 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let decisions: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "rolegate::decision")
        .collect();
    assert_eq!(decisions.len(), 3, "{log}");
    let allow = &decisions[0]["fields"];
    assert_eq!(allow["decision"], "allow");
    assert_eq!(allow["action"], "service.delete");
    assert_eq!(allow["path"], "/api/tenants/acme/services/42");
    assert_eq!(allow["tenant"], "acme");
    assert_eq!(allow["sub"], "alice");
    assert_eq!(allow["role"], "Company Admin");
    assert!(allow["request_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(allow["revision"].as_str().is_some_and(|s| s.len() == 12));
    assert_eq!(allow["response_status"], 200);
    assert_eq!(decisions[1]["fields"]["reason"], "not_granted");
    assert_eq!(decisions[1]["fields"]["response_status"], 403);
    let unauthenticated = &decisions[2]["fields"];
    assert_eq!(unauthenticated["status"], 401);
    assert_eq!(unauthenticated["reason"], "invalid_token");
    assert_eq!(unauthenticated["path"], "/api/tenants/acme/services/42");
    assert_eq!(unauthenticated["sub"], "");
    assert_eq!(unauthenticated["response_status"], 401);
    assert!(!log.contains(&admin_token), "the token reached the log");
    assert!(!log.contains(&forged), "the rejected token reached the log");
}

#[test]
fn serve_refuses_a_missing_config_with_exit_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .args(["serve", "--config", "config/does-not-exist.yaml"])
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot read `config/does-not-exist.yaml`")
    );
}

#[test]
fn serve_refuses_a_listen_address_in_use_with_exit_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let admin = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .args(["serve", "--config", "config/enterprise.yaml"])
        .args(["--listen", &addr, "--admin", &admin])
        .current_dir(root())
        .env("ROLEGATE_DEV_SECRET", SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(15) {
            child.kill().unwrap();
            panic!("serve kept running with its listen address in use");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr} (proxy)")),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    drop(taken);
}
