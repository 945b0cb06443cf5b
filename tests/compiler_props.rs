//! Properties of the compiler over random role graphs: inheritance is transitive, cycles are
//! refused, and the revision depends only on what the policy means.

use std::collections::BTreeSet;
use std::path::Path;

use proptest::prelude::*;
use rolegate::config::{load_with, MemorySource};
use rolegate::policy::CompiledPolicy;

const ACTIONS: usize = 12;

/// A random role graph: per role, its direct grants and its parents.
#[derive(Debug, Clone)]
struct Graph {
    grants: Vec<BTreeSet<usize>>,
    parents: Vec<BTreeSet<usize>>,
}

fn graph(acyclic: bool) -> impl Strategy<Value = Graph> {
    (2usize..9).prop_flat_map(move |n| {
        let grants = prop::collection::vec(prop::collection::btree_set(0..ACTIONS, 0..4), n);
        let parents = prop::collection::vec(prop::collection::btree_set(0..n, 0..3), n);
        (grants, parents).prop_map(move |(grants, mut parents)| {
            if acyclic {
                // Only edges to lower-numbered roles: no cycle is possible.
                for (i, ps) in parents.iter_mut().enumerate() {
                    ps.retain(|&p| p < i);
                }
            }
            Graph { grants, parents }
        })
    })
}

fn yaml(g: &Graph, comment: &str) -> String {
    let mut s = format!("# {comment}\nactions:\n");
    for a in 0..ACTIONS {
        s.push_str(&format!("  a{a}.do: Action {a}\n"));
    }
    s.push_str("roles:\n");
    for (i, (grants, parents)) in g.grants.iter().zip(&g.parents).enumerate() {
        let grants: Vec<String> = grants.iter().map(|a| format!("a{a}.do")).collect();
        let parents: Vec<String> = parents.iter().map(|p| format!("R{p}")).collect();
        s.push_str(&format!(
            "  R{i}:\n    grants: [{}]\n    inherits: [{}]\n",
            grants.join(", "),
            parents.join(", ")
        ));
    }
    s
}

fn compile(text: &str) -> Result<CompiledPolicy, String> {
    let src = MemorySource([("p.yaml".into(), text.to_string())].into_iter().collect());
    let config = load_with(&src, Path::new("p.yaml")).map_err(|e| e.to_string())?;
    CompiledPolicy::compile(&config).map_err(|e| e.to_string())
}

fn has_cycle(g: &Graph) -> bool {
    fn visit(i: usize, g: &Graph, state: &mut Vec<u8>) -> bool {
        match state[i] {
            1 => return true,
            2 => return false,
            _ => {}
        }
        state[i] = 1;
        let cyc = g.parents[i].iter().any(|&p| visit(p, g, state));
        state[i] = 2;
        cyc
    }
    let mut state = vec![0u8; g.grants.len()];
    (0..g.grants.len()).any(|i| visit(i, g, &mut state))
}

/// The expected effective grants: direct grants plus everything reachable through `inherits`.
fn closure(g: &Graph, i: usize) -> BTreeSet<usize> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![i];
    let mut out = BTreeSet::new();
    while let Some(r) = stack.pop() {
        if seen.insert(r) {
            out.extend(&g.grants[r]);
            stack.extend(&g.parents[r]);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn inheritance_is_transitive(g in graph(true)) {
        let p = compile(&yaml(&g, "x")).unwrap();
        for i in 0..g.grants.len() {
            let r = p.roles().get(&format!("R{i}")).unwrap();
            let got: BTreeSet<usize> = p.roles().grants(r).iter().map(|a| a as usize).collect();
            prop_assert_eq!(got, closure(&g, i), "role R{}", i);
        }
    }

    #[test]
    fn cycles_are_refused_and_only_cycles(g in graph(false)) {
        let result = compile(&yaml(&g, "x"));
        if has_cycle(&g) {
            let e = result.unwrap_err();
            prop_assert!(e.contains("inheritance cycle: "), "{}", e);
        } else {
            prop_assert!(result.is_ok(), "{:?}", result.err());
        }
    }

    #[test]
    fn revision_is_stable_and_ignores_layout(g in graph(true)) {
        let a = compile(&yaml(&g, "first")).unwrap();
        let b = compile(&yaml(&g, "a different comment")).unwrap();
        prop_assert_eq!(a.revision(), b.revision());
        let mut changed = g.clone();
        let extra = (0..ACTIONS).find(|x| !closure(&g, 0).contains(x));
        if let Some(x) = extra {
            changed.grants[0].insert(x);
            let c = compile(&yaml(&changed, "first")).unwrap();
            prop_assert_ne!(a.revision(), c.revision(), "a new grant changes the revision");
        }
    }
}
