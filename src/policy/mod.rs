//! Policy: the compiled role table, the route table and the decision.
//!
//! `config` gives a [`crate::config::Config`]; [`CompiledPolicy::compile`] resolves every name to an index,
//! flattens inheritance into bitsets and builds radix routers; [`CompiledPolicy::decide`] answers a
//! canonical request for a resolved [`Subject`] in constant time with respect to the number of roles.

mod bitset;
mod catalog;
mod compile;
mod decide;
mod decision;
mod principal;
mod roles;
mod route_table;

pub use bitset::ActionSet;
pub use catalog::{glob_match, is_valid_action_id, ActionIdx, Catalog};
pub use compile::CompiledPolicy;
pub use decide::Request;
pub use decision::{Decision, Reason};
pub use principal::{Principal, ProjectGrant, Subject};
pub use roles::{RoleIdx, RoleTable};
pub use route_table::{method_index, BoundSource, RouteEntry, RouteIdx, RouteMatch, RouteTable};
