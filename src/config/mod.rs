//! Configuration: YAML files (with includes) turned into one typed, located [`Config`].

pub mod bundle;
mod error;
mod load;
pub mod model;

pub use error::{did_you_mean, ConfigError, Located, Origin};
pub use load::{
    load_file, load_with, normalize, parse_route_key, parse_yaml, ActionDef, Config, ConfigSource,
    DiskSource, MemorySource, RoleDef, RouteDef, RouteTarget, METHODS,
};
pub use model::{
    AuthSettings, CallerRequirement, ClaimMapping, DecisionLogSettings, GatewaySettings,
    IssuerSettings, Relation, RoleScope, Source, UpstreamSettings,
};
