//! The command line, run as a real process: validate, check, check --batch, test and token on the presets.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::root;

const PRESETS: [&str; 4] = ["taikun", "enterprise", "child-tenants", "palette"];

fn rolegate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .args(args)
        .current_dir(root())
        .env_remove("ROLEGATE_DEV_SECRET")
        .output()
        .expect("run rolegate")
}

fn preset(p: &str) -> String {
    format!("config/{p}.yaml")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn validate_accepts_every_preset_and_prints_counts() {
    for p in PRESETS {
        let o = rolegate(&["validate", "--config", &preset(p)]);
        assert_eq!(o.status.code(), Some(0), "{p}: {}", stderr(&o));
        let out = stdout(&o);
        assert!(
            out.starts_with("valid: ") && out.contains(" actions, ") && out.contains(" routes"),
            "{p}: {out}"
        );
    }
}

/// Writes `files` into a temp dir and validates `main.yaml`.
fn validate_files(files: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let main = dir.path().join("main.yaml");
    let o = rolegate(&["validate", "--config", main.to_str().unwrap()]);
    drop(dir);
    o
}

#[test]
fn each_bad_config_gives_one_error_with_file_and_line_and_exit_2() {
    let base = "actions:\n  cluster.get: View clusters\n  cluster.delete: Delete clusters\n";
    let cases: Vec<(&str, String, &str)> = vec![
        ("yaml syntax", format!("{base}roles:\n  A: {{grants: [cluster.get\n"), "main.yaml:"),
        ("unknown action", format!("{base}roles:\n  A:\n    grants: [clusters.get]\n"), "main.yaml:6:14: unknown action `clusters.get` in grants of role `A`; did you mean `cluster.get`?"),
        ("unknown role", format!("{base}roles:\n  A:\n    inherits: [Bee]\n"), "main.yaml:6:16: role `A` inherits unknown role `Bee`"),
        ("cycle", format!("{base}roles:\n  A: {{inherits: [B]}}\n  B: {{inherits: [C]}}\n  C: {{inherits: [A]}}\n"), "inheritance cycle: A -> B -> C -> A"),
        (
            "route conflict",
            format!("{base}roles:\n  A: {{grants: [cluster.get]}}\nroutes:\n  - map:\n      GET /v1/c/{{uid}}: cluster.get\n      GET /v1/c/{{name}}: cluster.delete\n"),
            "main.yaml:9:7: route `GET /v1/c/{name}` conflicts with route `GET /v1/c/{uid}` at ",
        ),
        ("unknown route action", format!("{base}routes:\n  - map:\n      GET /x: cluster.gte\n"), "main.yaml:6:7: unknown action `cluster.gte` in route `GET /x`"),
        ("unreadable include", format!("include: [missing.yaml]\n{base}"), "main.yaml:1:11: cannot read `"),
        ("unknown key", format!("{base}rolez: {{}}\n"), "main.yaml:4:1: unknown field `rolez`"),
        (
            "wrong type",
            format!("{base}auth: {{leeway_seconds: -5}}\n"),
            "main.yaml:4:24: invalid u64; the value here must be a whole number, 0 or more",
        ),
        (
            "role with a comma",
            format!("{base}roles:\n  \"A,B\": {{grants: [cluster.get]}}\n"),
            "main.yaml:5:3: role name `A,B` holds a comma or a control character",
        ),
        (
            "duplicate key",
            format!("{base}  cluster.get: Again\n"),
            "main.yaml:4:3: duplicate mapping key: cluster.get; a key may appear once per mapping",
        ),
        (
            "upstream address",
            format!("{base}upstreams:\n  api:\n    addresses: [\"not an address\"]\n"),
            "main.yaml:5:3: upstream `api`: address `not an address` is not host:port",
        ),
    ];
    for (name, text, want) in cases {
        let o = validate_files(&[("main.yaml", &text)]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: one error line: {err}");
        assert!(err.contains(want), "{name}: {err:?} lacks {want:?}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
}

#[test]
fn errors_in_included_files_name_that_file() {
    let o = validate_files(&[
        (
            "main.yaml",
            "include: [roles.yaml]\nactions:\n  a.get: Get\n",
        ),
        ("roles.yaml", "roles:\n  R:\n    grants: [a.gte]\n"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("roles.yaml:3:14: unknown action `a.gte`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn check_exits_0_on_allow_1_on_deny_and_prints_the_decision() {
    let cases = [
        (
            "enterprise",
            r#"{"sub":"a","tenant":"acme","roles":["Company Admin"]}"#,
            "DELETE",
            "/api/tenants/acme/services/42",
            0,
            "granted",
        ),
        (
            "enterprise",
            r#"{"sub":"r","tenant":"acme","roles":["Read Only"]}"#,
            "DELETE",
            "/api/tenants/acme/services/42",
            1,
            "not_granted",
        ),
        (
            "taikun",
            r#"{"sub":"m","tenant":"o","roles":["Manager"]}"#,
            "POST",
            "/api/v1/projects/delete",
            0,
            "granted",
        ),
        (
            "taikun",
            r#"{"sub":"u","tenant":"o","roles":["User"]}"#,
            "POST",
            "/api/v1/projects/delete",
            1,
            "not_granted",
        ),
        (
            "child-tenants",
            r#"{"sub":"e","tenant":"acme-eu","roles":["Company Admin"]}"#,
            "GET",
            "/api/tenants/acme/services",
            1,
            "tenant_mismatch",
        ),
        (
            "palette",
            r#"{"sub":"v","tenant":"t1","roles":["Tenant Viewer"]}"#,
            "GET",
            "/v1/spectroclusters/abc",
            0,
            "granted",
        ),
    ];
    for (p, claims, method, path, code, reason) in cases {
        let o = rolegate(&[
            "check",
            "--config",
            &preset(p),
            "--claims",
            claims,
            method,
            path,
        ]);
        assert_eq!(
            o.status.code(),
            Some(code),
            "{p} {method} {path}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        let v: serde_json::Value =
            serde_json::from_str(stdout(&o).trim()).expect("one JSON object");
        assert_eq!(v["reason"], reason, "{v}");
        assert_eq!(v["decision"], if code == 0 { "allow" } else { "deny" });
    }
    let o = rolegate(&[
        "check",
        "--config",
        &preset("palette"),
        "--claims",
        r#"{"tenant":"t1","project_roles":{"p1":["Cluster Admin"]}}"#,
        "--action",
        "cluster.delete",
        "--project",
        "p1",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let o = rolegate(&[
        "check",
        "--config",
        &preset("palette"),
        "--claims",
        "[1]",
        "--action",
        "cluster.delete",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let o = rolegate(&[
        "check",
        "--config",
        &preset("palette"),
        "--claims",
        "{}",
        "--action",
        "cluster.gett",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("did you mean `cluster.get`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn check_batch_answers_one_line_per_request_in_order() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .args(["check", "--config", &preset("enterprise"), "--batch"])
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input = [
        r#"{"claims":{"tenant":"acme","roles":["Read Only"]},"action":"service.view"}"#,
        r#"{"claims":{"tenant":"acme","roles":["Read Only"]},"method":"DELETE","path":"/api/tenants/acme/services/1"}"#,
        r#"{"claims":{"tenant":"acme","roles":["Company Admin"]},"action":"service.view","tenant":"globex"}"#,
        r#"{"method":"GET","path":"/api/tenants/acme/services"}"#,
    ];
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.join("\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<(&str, &str)> = lines
        .iter()
        .map(|v| {
            (
                v["decision"].as_str().unwrap(),
                v["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("allow", "granted"),
            ("deny", "not_granted"),
            ("deny", "tenant_mismatch"),
            ("deny", "missing_token")
        ]
    );
}

#[test]
fn policy_test_cases_pass_on_every_preset_and_failures_exit_1() {
    for p in PRESETS {
        let cases = format!("tests/cases/{p}.yaml");
        let o = rolegate(&["test", "--config", &preset(p), &cases]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{p}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        assert!(
            stdout(&o).trim_end().ends_with(" passed, 0 failed"),
            "{}",
            stdout(&o)
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong.yaml");
    std::fs::write(&wrong, "cases:\n  - {name: reader deletes, claims: {tenant: acme, roles: [Read Only]}, request: DELETE /api/tenants/acme/services/1, expect: allow}\n").unwrap();
    let o = rolegate(&[
        "test",
        "--config",
        &preset("enterprise"),
        wrong.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("FAIL reader deletes") && stdout(&o).contains("not_granted"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("0 passed, 1 failed"));
    assert!(stdout(&o).contains("expected allow, got"), "{}", stdout(&o));
    // A quoted status is the status.
    std::fs::write(&wrong, "cases:\n  - {name: reader deletes, claims: {tenant: acme, roles: [Read Only]}, request: DELETE /api/tenants/acme/services/1, expect: \"403\"}\n").unwrap();
    let o = rolegate(&[
        "test",
        "--config",
        &preset("enterprise"),
        wrong.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn dev_tokens_verify_with_check_and_unknown_roles_are_refused() {
    let secret = "cli-test-secret";
    let token = Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .args([
            "token",
            "--config",
            &preset("palette"),
            "--sub",
            "c",
            "--tenant",
            "t1",
            "--project-role",
            "p1=Cluster Admin",
            "--ttl",
            "10m",
        ])
        .current_dir(root())
        .env("ROLEGATE_DEV_SECRET", secret)
        .output()
        .unwrap();
    assert_eq!(token.status.code(), Some(0), "{}", stderr(&token));
    let t = stdout(&token).trim().to_string();
    let check = |secret: &str, project: &str| {
        Command::new(env!("CARGO_BIN_EXE_rolegate"))
            .args([
                "check",
                "--config",
                &preset("palette"),
                "--token",
                &t,
                "-H",
                &format!("ProjectUid: {project}"),
                "DELETE",
                "/v1/spectroclusters/abc",
            ])
            .current_dir(root())
            .env("ROLEGATE_DEV_SECRET", secret)
            .output()
            .unwrap()
    };
    assert_eq!(
        check(secret, "p1").status.code(),
        Some(0),
        "{}",
        stdout(&check(secret, "p1"))
    );
    assert_eq!(check(secret, "p2").status.code(), Some(1));
    let forged = check("another-secret", "p1");
    assert_eq!(forged.status.code(), Some(1));
    assert!(
        stdout(&forged).contains("invalid_token"),
        "{}",
        stdout(&forged)
    );
    let o = Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .args([
            "token",
            "--config",
            &preset("palette"),
            "--sub",
            "c",
            "--tenant",
            "t1",
            "--role",
            "Tenant Admn",
        ])
        .current_dir(root())
        .env("ROLEGATE_DEV_SECRET", secret)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("did you mean `Tenant Admin`"),
        "{}",
        stderr(&o)
    );
    let o = rolegate(&[
        "token",
        "--config",
        &preset("palette"),
        "--sub",
        "c",
        "--tenant",
        "t1",
        "--role",
        "Tenant Admin",
    ]);
    assert_eq!(o.status.code(), Some(2), "no secret, no token");
}

#[test]
fn check_decides_as_the_gateway_on_method_case_and_repeated_headers() {
    let claims = r#"{"sub":"u","tenant":"acme","roles":["Read Only"]}"#;
    let route = |method: &str| {
        rolegate(&[
            "check",
            "--config",
            &preset("enterprise"),
            "--claims",
            claims,
            method,
            "/api/tenants/acme/services",
        ])
    };
    assert_eq!(route("GET").status.code(), Some(0));
    let lower = route("get");
    assert_eq!(lower.status.code(), Some(1), "{}", stdout(&lower));
    assert!(
        stdout(&lower).contains("unmapped_route"),
        "{}",
        stdout(&lower)
    );

    let project = r#"{"sub":"u","tenant":"t1","project_roles":{"p1":["Cluster Admin"]}}"#;
    let twice = rolegate(&[
        "check",
        "--config",
        &preset("palette"),
        "--claims",
        project,
        "-H",
        "ProjectUid: p2",
        "-H",
        "projectuid: p1",
        "DELETE",
        "/v1/spectroclusters/abc",
    ]);
    assert_eq!(twice.status.code(), Some(1), "{}", stdout(&twice));
    assert!(
        stdout(&twice).contains("missing_target"),
        "{}",
        stdout(&twice)
    );
}

#[test]
fn check_batch_answers_every_line_after_one_that_is_not_utf8() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .args(["check", "--config", &preset("enterprise"), "--batch"])
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ok = br#"{"claims":{"tenant":"acme","roles":["Read Only"]},"action":"service.view"}"#;
    let mut input = ok.to_vec();
    input.extend_from_slice(b"\n\xff\xfe\n");
    input.extend_from_slice(ok);
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{}", stdout(&out));
    assert_eq!(lines[0]["decision"], "allow");
    assert_eq!(lines[1]["error"], "line 2: not UTF-8");
    assert_eq!(lines[2]["decision"], "allow");
}

#[test]
fn token_ttl_out_of_range_is_refused() {
    for ttl in ["18446744073709551615s", "99999999999999999d", "367d", "0s"] {
        let out = Command::new(env!("CARGO_BIN_EXE_rolegate"))
            .args(["token", "--config", &preset("enterprise"), "--sub", "a"])
            .args(["--tenant", "acme", "--role", "Read Only", "--ttl", ttl])
            .current_dir(root())
            .env("ROLEGATE_DEV_SECRET", "s")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{ttl}: {}", stdout(&out));
        assert!(stderr(&out).contains("at most 366d"), "{}", stderr(&out));
    }
}

#[test]
fn check_by_action_holds_the_caller_and_tenant_to_what_the_routes_require() {
    let by_action = |claims: &str, tenant: Option<&str>| {
        let mut args = vec![
            "check",
            "--config",
            "config/child-tenants.yaml",
            "--claims",
            claims,
            "--action",
            "child-tenant.manage",
        ];
        if let Some(t) = tenant {
            args.extend(["--tenant", t]);
        }
        let out = rolegate(&args);
        let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        (out.status.code(), v["reason"].as_str().unwrap().to_string())
    };
    let root = r#"{"sub":"a","tenant":"acme","roles":["Company Admin"]}"#;
    let child = r#"{"sub":"a","tenant":"acme-eu","roles":["Company Admin"]}"#;
    // Every child-tenant.manage route is `caller: root` on the caller's own tenant.
    assert_eq!(by_action(root, None), (Some(0), "granted".into()));
    assert_eq!(by_action(child, None), (Some(1), "not_root_tenant".into()));
    assert_eq!(
        by_action(root, Some("acme-eu")),
        (Some(1), "tenant_mismatch".into())
    );
}

#[test]
fn check_with_an_invalid_token_prints_the_whole_decision_object() {
    let out = Command::new(env!("CARGO_BIN_EXE_rolegate"))
        .args(["check", "--config", &preset("enterprise"), "--token", "abc"])
        .args(["--action", "service.view"])
        .current_dir(root())
        .env("ROLEGATE_DEV_SECRET", "s")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    for key in [
        "decision", "status", "action", "route", "tenant", "roles", "role", "reason",
    ] {
        assert!(v.get(key).is_some(), "{key} missing: {v}");
    }
    assert_eq!(v["reason"], "invalid_token");
    assert_eq!(v["action"], "service.view");
}

#[test]
fn validate_refuses_what_serve_would_refuse_beyond_the_policy() {
    let base = "actions:\n  a.get: A\nroles:\n  R: {grants: [a.get]}\n";
    let cases = [
        (
            "gateway: {trusted_proxies: [nothost]}\n",
            "main.yaml: gateway.trusted_proxies: `nothost` is not an IP address",
        ),
        (
            "gateway: {decision_log: {level: loud}}\n",
            "gateway.decision_log.level: `loud` is not one of error, warn, info, debug, trace",
        ),
        (
            "auth:\n  issuers:\n    - {issuer: x, algorithms: [RS256], pem_files: [nonexist.pem]}\n",
            "nonexist.pem`: No such file",
        ),
        (
            "auth:\n  issuers:\n    - {issuer: x, algorithms: [HS256], hmac_secret_env: ROLEGATE_TEST_UNSET}\n",
            "environment variable `ROLEGATE_TEST_UNSET` is not set",
        ),
        (
            "auth:\n  issuers:\n    - {issuer: x, algorithms: [RS256]}\n",
            "issuer `x`: give exactly one key source",
        ),
    ];
    for (extra, want) in cases {
        let o = validate_files(&[("main.yaml", &format!("{base}{extra}"))]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{extra}: {err}");
        assert!(err.contains(want), "{extra}: {err:?} lacks {want:?}");
    }
}

#[test]
fn moving_lines_leaves_the_revision_unchanged() {
    let revision = |text: &str| {
        let o = validate_files(&[("main.yaml", text)]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let out = stdout(&o);
        out.rsplit_once("(revision ")
            .unwrap()
            .1
            .trim()
            .trim_end_matches(')')
            .to_string()
    };
    let a = "actions:\n  a.get: A\n  b.get: B\nroles:\n  R: {grants: [a.get, b.get]}\n  S: {grants: [b.get]}\nroutes:\n  - map:\n      GET,HEAD /a: a.get\n      GET /b: b.get\n";
    let moved = "actions:\n  b.get: B\n  a.get: A\nroles:\n  S: {grants: [b.get]}\n  R: {grants: [b.get, a.get]}\nroutes:\n  - map:\n      GET /b: b.get\n      HEAD,GET /a: a.get\n";
    let changed = "actions:\n  a.get: A\n  b.get: B\nroles:\n  R: {grants: [a.get]}\n  S: {grants: [b.get]}\nroutes:\n  - map:\n      GET,HEAD /a: a.get\n      GET /b: b.get\n";
    assert_eq!(revision(a), revision(moved));
    assert_ne!(revision(a), revision(changed));
}
