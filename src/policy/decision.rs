//! Decisions: the outcome of one request against one policy, with a stable reason.

use super::catalog::ActionIdx;
use super::roles::RoleIdx;
use super::route_table::RouteIdx;

/// Why a request was allowed or denied. The strings are stable: metrics and logs use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A role the caller holds grants the action.
    Granted,
    /// The route needs no token.
    PublicRoute,
    /// No route maps the request.
    UnmappedRoute,
    /// No bearer token.
    MissingToken,
    /// The token failed verification.
    InvalidToken,
    /// The token names no tenant.
    MissingTenant,
    /// The route's tenant source is absent or ambiguous in the request.
    MissingTarget,
    /// The target tenant is not one the caller may act on.
    TenantMismatch,
    /// The route requires a root tenant and the caller's tenant has a parent.
    NotRootTenant,
    /// The caller holds no role the policy knows.
    NoKnownRole,
    /// Only a role bound to another project grants the action.
    ProjectMismatch,
    /// No role the caller holds grants the action.
    NotGranted,
    /// The request cannot be canonicalized.
    BadRequest,
}

impl Reason {
    /// Every reason, for pre-registering metric labels.
    pub const ALL: [Reason; 13] = [
        Reason::Granted,
        Reason::PublicRoute,
        Reason::UnmappedRoute,
        Reason::MissingToken,
        Reason::InvalidToken,
        Reason::MissingTenant,
        Reason::MissingTarget,
        Reason::TenantMismatch,
        Reason::NotRootTenant,
        Reason::NoKnownRole,
        Reason::ProjectMismatch,
        Reason::NotGranted,
        Reason::BadRequest,
    ];

    /// The stable snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::Granted => "granted",
            Reason::PublicRoute => "public_route",
            Reason::UnmappedRoute => "unmapped_route",
            Reason::MissingToken => "missing_token",
            Reason::InvalidToken => "invalid_token",
            Reason::MissingTenant => "missing_tenant",
            Reason::MissingTarget => "missing_target",
            Reason::TenantMismatch => "tenant_mismatch",
            Reason::NotRootTenant => "not_root_tenant",
            Reason::NoKnownRole => "no_known_role",
            Reason::ProjectMismatch => "project_mismatch",
            Reason::NotGranted => "not_granted",
            Reason::BadRequest => "bad_request",
        }
    }

    /// A sentence for people (problem+json `detail`).
    pub const fn describe(self) -> &'static str {
        match self {
            Reason::Granted => "a role of the caller grants the action",
            Reason::PublicRoute => "the route is public",
            Reason::UnmappedRoute => "no route maps this method and path",
            Reason::MissingToken => "a bearer token is required",
            Reason::InvalidToken => "the bearer token is not valid",
            Reason::MissingTenant => "the token names no tenant",
            Reason::MissingTarget => {
                "the request does not name the tenant it targets, or names its tenant or project twice"
            }
            Reason::TenantMismatch => "the caller may not act on the target tenant",
            Reason::NotRootTenant => "only a root tenant may perform this action",
            Reason::NoKnownRole => "the caller holds no role this gateway knows",
            Reason::ProjectMismatch => {
                "the caller's roles for this action are bound to another project"
            }
            Reason::NotGranted => "no role of the caller grants this action",
            Reason::BadRequest => "the request path is not acceptable",
        }
    }

    /// Index in [`Reason::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// The outcome of one request. Plain data: building one never allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Forward (true) or answer with `status` (false).
    pub allowed: bool,
    /// 200 when allowed; otherwise 400, 401, 403 or 404.
    pub status: u16,
    /// Why.
    pub reason: Reason,
    /// The action the route maps to.
    pub action: Option<ActionIdx>,
    /// The matched route.
    pub route: Option<RouteIdx>,
    /// The role that granted the action.
    pub role: Option<RoleIdx>,
}

impl Decision {
    /// A denial with `status` and `reason`.
    pub const fn deny(status: u16, reason: Reason) -> Self {
        Decision {
            allowed: false,
            status,
            reason,
            action: None,
            route: None,
            role: None,
        }
    }

    /// An allow for `reason`.
    pub const fn allow(reason: Reason, role: Option<RoleIdx>) -> Self {
        Decision {
            allowed: true,
            status: 200,
            reason,
            action: None,
            route: None,
            role,
        }
    }

    /// The same decision, for `action` on `route`.
    pub const fn on(mut self, action: Option<ActionIdx>, route: Option<RouteIdx>) -> Self {
        self.action = action;
        self.route = route;
        self
    }
}
