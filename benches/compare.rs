//! The same decisions in rolegate, cedar-policy and casbin-rs, measured in one run.
//!
//! Each engine gets a faithful encoding of a preset's tenant-scope role table (every tenant role,
//! plus implicit roles every user holds), built from the compiled policy's role grants:
//! - cedar: one action group per role (`Action::"role:NAME"`, each action a member of the groups of
//!   the roles that grant it), users members of `Role::"NAME"`, one `permit` per role with
//!   `principal.tenant == resource.tenant`;
//! - casbin: RBAC with domains, `p = role, action`, `g = user, role, tenant`, one policy line per
//!   granted (role, action) cell.
//!
//! Before any timing every cell (each role x each action x own and foreign tenant) is decided by
//! all three engines and must agree. Then each engine decides every cell in turn.
//!
//! `cargo bench --bench compare`; figures are in BENCHMARKS.md.

use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use casbin::prelude::*;
use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityId, EntityTypeName,
    EntityUid, PolicySet, Request as CedarRequest, RestrictedExpression,
};
use criterion::{criterion_group, criterion_main, Criterion};
use rolegate::config::{load_file, RoleScope};
use rolegate::policy::{CompiledPolicy, Principal, RoleIdx, Subject};

const TENANTS: [&str; 2] = ["t1", "t2"];

fn preset(name: &str) -> CompiledPolicy {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("config/{name}.yaml"));
    CompiledPolicy::compile(&load_file(&path).expect("preset loads")).expect("preset compiles")
}

fn uid(ty: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(
        EntityTypeName::from_str(ty).expect("type name"),
        EntityId::new(id),
    )
}

/// The tenant-scope role table of one policy, in the three encodings.
struct Table {
    policy: CompiledPolicy,
    /// Tenant-scope, non-implicit roles (one user per role holds it in tenant t1).
    roles: Vec<RoleIdx>,
    subjects: Vec<Subject>,
    principals: Vec<Principal>,
    cedar_policies: PolicySet,
    cedar_entities: Entities,
    casbin: Enforcer,
    /// (role position, action, tenant position) for every cell.
    cells: Vec<(usize, u32, usize)>,
}

fn user(role: &str) -> String {
    format!("user of {role}")
}

fn encode(name: &str) -> Table {
    let policy = preset(name);
    let rt = policy.roles();
    let implicit: Vec<RoleIdx> = rt.implicit().to_vec();
    let roles: Vec<RoleIdx> = (0..rt.len() as RoleIdx)
        .filter(|&r| rt.scope(r) == RoleScope::Tenant && !implicit.contains(&r))
        .collect();
    let catalog = policy.catalog();

    // cedar: action groups per role, users in role groups, one permit per role.
    let mut groups_of: Vec<HashSet<EntityUid>> = vec![HashSet::new(); catalog.len()];
    let mut src = String::new();
    for r in roles.iter().chain(&implicit).copied() {
        let role = rt.name(r);
        for a in rt.grants(r).iter() {
            groups_of[a as usize].insert(uid("Action", &format!("role:{role}")));
        }
        let principal = if implicit.contains(&r) {
            "principal".to_string()
        } else {
            format!("principal in Role::{role:?}")
        };
        src.push_str(&format!(
            "permit({principal}, action in Action::\"role:{role}\", resource) \
             when {{ principal.tenant == resource.tenant }};\n"
        ));
    }
    let cedar_policies = PolicySet::from_str(&src).expect("cedar policies parse");
    let mut entities: Vec<Entity> = Vec::new();
    for r in roles.iter().chain(&implicit) {
        let role = rt.name(*r);
        entities.push(Entity::new_no_attrs(
            uid("Action", &format!("role:{role}")),
            HashSet::new(),
        ));
        entities.push(Entity::new_no_attrs(uid("Role", role), HashSet::new()));
        if !implicit.contains(r) {
            let attrs = HashMap::from([(
                "tenant".to_string(),
                RestrictedExpression::new_string("t1".into()),
            )]);
            entities.push(
                Entity::new(
                    uid("User", &user(role)),
                    attrs,
                    HashSet::from([uid("Role", role)]),
                )
                .expect("user entity"),
            );
        }
    }
    for (a, parents) in groups_of.into_iter().enumerate() {
        entities.push(Entity::new_no_attrs(
            uid("Action", catalog.id(a as u32)),
            parents,
        ));
    }
    for t in TENANTS {
        let attrs = HashMap::from([(
            "tenant".to_string(),
            RestrictedExpression::new_string(t.into()),
        )]);
        entities.push(
            Entity::new(uid("Resource", &format!("in {t}")), attrs, HashSet::new())
                .expect("resource entity"),
        );
    }
    let cedar_entities = Entities::from_entities(entities, None).expect("cedar entities");

    // casbin: RBAC with domains.
    let model = "[request_definition]\nr = sub, dom, act\n\
                 [policy_definition]\np = sub, act\n\
                 [role_definition]\ng = _, _, _\n\
                 [policy_effect]\ne = some(where (p.eft == allow))\n\
                 [matchers]\nm = g(r.sub, p.sub, r.dom) && r.act == p.act\n";
    let mut p_rules = Vec::new();
    for r in roles.iter().chain(&implicit) {
        for a in rt.grants(*r).iter() {
            p_rules.push(vec![rt.name(*r).to_string(), catalog.id(a).to_string()]);
        }
    }
    let mut g_rules = Vec::new();
    for r in &roles {
        let u = user(rt.name(*r));
        g_rules.push(vec![u.clone(), rt.name(*r).to_string(), "t1".into()]);
        for i in &implicit {
            g_rules.push(vec![u.clone(), rt.name(*i).to_string(), "t1".into()]);
        }
    }
    let casbin = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(async {
            let m = DefaultModel::from_str(model).await.expect("casbin model");
            let mut e = Enforcer::new(m, MemoryAdapter::default())
                .await
                .expect("casbin enforcer");
            e.add_policies(p_rules).await.expect("casbin policies");
            e.add_grouping_policies(g_rules)
                .await
                .expect("casbin groupings");
            e
        });

    let principals: Vec<Principal> = roles
        .iter()
        .map(|r| Principal {
            subject: user(rt.name(*r)),
            tenant: Some("t1".into()),
            roles: vec![rt.name(*r).to_string()],
            project_roles: Vec::new(),
        })
        .collect();
    let subjects = principals.iter().map(|p| policy.resolve(p)).collect();
    let mut cells = Vec::new();
    for ri in 0..roles.len() {
        for a in 0..catalog.len() as u32 {
            for ti in 0..TENANTS.len() {
                cells.push((ri, a, ti));
            }
        }
    }
    Table {
        policy,
        roles,
        subjects,
        principals,
        cedar_policies,
        cedar_entities,
        casbin,
        cells,
    }
}

impl Table {
    fn rolegate(&self, (ri, a, ti): (usize, u32, usize)) -> bool {
        self.policy
            .decide_action(&self.subjects[ri], a, Some(TENANTS[ti]), None)
            .allowed
    }

    fn cedar_request(&self, (ri, a, ti): (usize, u32, usize)) -> CedarRequest {
        let role = self.policy.roles().name(self.roles[ri]);
        CedarRequest::new(
            uid("User", &user(role)),
            uid("Action", self.policy.catalog().id(a)),
            uid("Resource", &format!("in {}", TENANTS[ti])),
            Context::empty(),
            None,
        )
        .expect("cedar request")
    }

    fn cedar(&self, authorizer: &Authorizer, req: &CedarRequest) -> bool {
        authorizer
            .is_authorized(req, &self.cedar_policies, &self.cedar_entities)
            .decision()
            == CedarDecision::Allow
    }

    fn casbin_args(&self, (ri, a, ti): (usize, u32, usize)) -> (String, String, String) {
        let role = self.policy.roles().name(self.roles[ri]);
        (
            user(role),
            TENANTS[ti].to_string(),
            self.policy.catalog().id(a).to_string(),
        )
    }

    fn casbin(&self, (u, t, a): &(String, String, String)) -> bool {
        self.casbin
            .enforce((u.as_str(), t.as_str(), a.as_str()))
            .expect("casbin enforce")
    }
}

fn compare(c: &mut Criterion, name: &str) {
    let t = encode(name);
    let authorizer = Authorizer::new();
    let cedar_reqs: Vec<CedarRequest> = t.cells.iter().map(|&c| t.cedar_request(c)).collect();
    let casbin_args: Vec<_> = t.cells.iter().map(|&c| t.casbin_args(c)).collect();
    let mut allowed = 0;
    for (i, &cell) in t.cells.iter().enumerate() {
        let ours = t.rolegate(cell);
        let cedar = t.cedar(&authorizer, &cedar_reqs[i]);
        let casbin = t.casbin(&casbin_args[i]);
        assert!(
            ours == cedar && ours == casbin,
            "{name}: cell {:?} differs: rolegate {ours}, cedar {cedar}, casbin {casbin}",
            casbin_args[i]
        );
        allowed += ours as usize;
    }
    eprintln!(
        "{name}: {} roles x {} actions x 2 tenants = {} cells, all equal in the three engines ({allowed} allow)",
        t.roles.len(),
        t.policy.catalog().len(),
        t.cells.len()
    );
    let n = t.cells.len();
    let mut g = c.benchmark_group(format!("{name} role table, every cell in turn"));
    let mut i = 0usize;
    g.bench_function("rolegate decide_action (subject resolved)", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            black_box(t.rolegate(black_box(t.cells[i])))
        })
    });
    g.bench_function("rolegate resolve + decide_action", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            let (ri, a, ti) = t.cells[i];
            let s = t.policy.resolve(black_box(&t.principals[ri]));
            black_box(t.policy.decide_action(&s, a, Some(TENANTS[ti]), None))
        })
    });
    g.bench_function("cedar is_authorized (request and entities prebuilt)", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            black_box(t.cedar(&authorizer, black_box(&cedar_reqs[i])))
        })
    });
    g.bench_function("cedar request built + is_authorized", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            let req = t.cedar_request(black_box(t.cells[i]));
            black_box(t.cedar(&authorizer, &req))
        })
    });
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("casbin enforce", |b| {
        b.iter(|| {
            i = (i + 1) % n;
            black_box(t.casbin(black_box(&casbin_args[i])))
        })
    });
    g.finish();
}

/// What a cedar deployment builds per request when entities come from the token: the user with
/// its role parents and tenant, and the resource.
fn cedar_entities_per_request(c: &mut Criterion) {
    let roles = ["Tenant Viewer", "Tenant Cluster Group Admin"];
    c.bench_function(
        "cedar: per-request entities (user + 2 roles + resource)",
        |b| {
            b.iter(|| {
                let user = Entity::new(
                    uid("User", "user-5f2c"),
                    HashMap::from([(
                        "tenant".to_string(),
                        RestrictedExpression::new_string("t1".into()),
                    )]),
                    roles.iter().map(|r| uid("Role", r)).collect(),
                )
                .expect("user");
                let resource = Entity::new(
                    uid("Resource", "in t1"),
                    HashMap::from([(
                        "tenant".to_string(),
                        RestrictedExpression::new_string("t1".into()),
                    )]),
                    HashSet::new(),
                )
                .expect("resource");
                black_box(Entities::from_entities([user, resource], None).expect("entities"))
            })
        },
    );
}

fn palette(c: &mut Criterion) {
    compare(c, "palette");
}

fn taikun(c: &mut Criterion) {
    compare(c, "taikun");
}

criterion_group!(benches, palette, taikun, cedar_entities_per_request);
criterion_main!(benches);
