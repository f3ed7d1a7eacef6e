//! Authorization, one step for every route: who is calling (the principal), what the
//! route needs (its `Need`), and the tenant in its path decide between going on, 401 and
//! 403. Routes declare their need in the routing table; nothing else decides access.

use crate::domain::ids::TenantId;
use crate::domain::ledger::Actor;
use crate::error::{ApiError, ApiResult};
use uuid::Uuid;

/// What a tenant key may do. Declared in the order of their names, so a set lists
/// them sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    CounterAdjust,
    CounterCreate,
    CounterHistory,
    CounterIncrement,
    CounterRead,
    TenantExport,
    TenantRead,
}

impl Scope {
    pub const ALL: [Scope; 7] = [
        Scope::CounterAdjust,
        Scope::CounterCreate,
        Scope::CounterHistory,
        Scope::CounterIncrement,
        Scope::CounterRead,
        Scope::TenantExport,
        Scope::TenantRead,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scope::CounterAdjust => "counter:adjust",
            Scope::CounterCreate => "counter:create",
            Scope::CounterHistory => "counter:history",
            Scope::CounterIncrement => "counter:increment",
            Scope::CounterRead => "counter:read",
            Scope::TenantExport => "tenant:export",
            Scope::TenantRead => "tenant:read",
        }
    }

    pub fn parse(raw: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.name() == raw)
    }
}

/// A set of scopes: listed sorted, without duplicates, by construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    /// A new key's scopes when none are asked for.
    pub const DEFAULT: Scopes = Scopes(
        1 << Scope::CounterRead as u8
            | 1 << Scope::CounterIncrement as u8
            | 1 << Scope::CounterHistory as u8,
    );

    pub fn of(scopes: &[Scope]) -> Scopes {
        Scopes(scopes.iter().fold(0, |bits, s| bits | 1 << *s as u8))
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & (1 << scope as u8) != 0
    }

    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Scope::ALL
            .into_iter()
            .filter(move |s| self.contains(*s))
            .map(Scope::name)
    }

    /// As stored: space-separated names.
    pub fn join(self) -> String {
        self.names().collect::<Vec<_>>().join(" ")
    }

    /// A stored list; names this version does not know grant nothing.
    pub fn split(stored: &str) -> Scopes {
        let known: Vec<Scope> = stored.split(' ').filter_map(Scope::parse).collect();
        Scopes::of(&known)
    }
}

/// Who is calling, once any presented key has been verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No key presented.
    Anonymous,
    /// The `ADMIN_API_KEY` secret.
    AdminSecret,
    /// A managed administrator key.
    Admin(Uuid),
    /// A tenant key.
    Tenant {
        credential: Uuid,
        tenant: TenantId,
        scopes: Scopes,
    },
}

impl Principal {
    /// The `actor_id` its operations are attributed to.
    pub fn actor(&self) -> Actor {
        match self {
            Principal::Anonymous => Actor::Anonymous,
            Principal::AdminSecret => Actor::Admin,
            Principal::Admin(id) | Principal::Tenant { credential: id, .. } => {
                Actor::Credential(*id)
            }
        }
    }

    pub fn is_admin(&self) -> bool {
        matches!(self, Principal::AdminSecret | Principal::Admin(_))
    }
}

/// What a route needs from its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Anyone (public routes, operational endpoints).
    Nothing,
    /// An administrator key.
    Admin,
    /// An administrator key, or a key of the path's tenant with this scope.
    Scope(Scope),
}

/// The one authorization step. A presented key that did not verify never gets here: it
/// is 401 on every route, public ones included.
pub fn authorize(principal: &Principal, need: Need, tenant: Option<&TenantId>) -> ApiResult<()> {
    let refuse = |why: &str| Err(ApiError::Forbidden(why.into()));
    match (need, principal) {
        (Need::Nothing, _) => Ok(()),
        (_, p) if p.is_admin() => Ok(()),
        (_, Principal::Anonymous) => Err(ApiError::Unauthorized),
        (Need::Admin, _) => refuse("this route needs an administrator key"),
        (
            Need::Scope(scope),
            Principal::Tenant {
                tenant: own,
                scopes,
                ..
            },
        ) => {
            if tenant != Some(own) {
                refuse("this key belongs to another tenant")
            } else if !scopes.contains(scope) {
                Err(ApiError::Forbidden(format!(
                    "this key lacks the scope {}",
                    scope.name()
                )))
            } else {
                Ok(())
            }
        }
        (Need::Scope(_), _) => refuse("not allowed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a61";
    const T2: &str = "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a62";

    fn tenant_key(tenant: &str, scopes: &[Scope]) -> Principal {
        Principal::Tenant {
            credential: Uuid::from_u128(9),
            tenant: TenantId::parse(tenant).unwrap(),
            scopes: Scopes::of(scopes),
        }
    }

    fn outcome(p: &Principal, need: Need, tenant: Option<&str>) -> u16 {
        let tenant = tenant.map(|t| TenantId::parse(t).unwrap());
        match authorize(p, need, tenant.as_ref()) {
            Ok(()) => 200,
            Err(e) => e.status(),
        }
    }

    /// Every principal against every kind of need, on its own tenant and another.
    #[test]
    fn the_authorization_table() {
        let admins = [Principal::AdminSecret, Principal::Admin(Uuid::from_u128(1))];
        for scope in Scope::ALL {
            let need = Need::Scope(scope);
            for admin in &admins {
                assert_eq!(outcome(admin, need, Some(T1)), 200);
                assert_eq!(outcome(admin, Need::Admin, None), 200);
            }
            assert_eq!(outcome(&Principal::Anonymous, need, Some(T1)), 401);
            let with = tenant_key(T1, &[scope]);
            assert_eq!(outcome(&with, need, Some(T1)), 200, "{scope:?}");
            assert_eq!(outcome(&with, need, Some(T2)), 403, "{scope:?} elsewhere");
            assert_eq!(outcome(&with, need, None), 403, "{scope:?} without tenant");
            assert_eq!(outcome(&with, Need::Admin, Some(T1)), 403);
            let others: Vec<Scope> = Scope::ALL.into_iter().filter(|s| *s != scope).collect();
            let without = tenant_key(T1, &others);
            assert_eq!(outcome(&without, need, Some(T1)), 403, "{scope:?} missing");
        }
        assert_eq!(outcome(&Principal::Anonymous, Need::Admin, None), 401);
        for p in [
            Principal::Anonymous,
            Principal::AdminSecret,
            tenant_key(T2, &[]),
        ] {
            assert_eq!(outcome(&p, Need::Nothing, Some(T1)), 200);
        }
    }

    #[test]
    fn scope_lists() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.name()), Some(s));
        }
        assert_eq!(Scope::parse("counter:delete"), None);
        let names: Vec<_> = Scope::ALL.iter().map(|s| s.name()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "declared in name order");
        assert_eq!(
            Scopes::of(&[Scope::CounterRead, Scope::CounterAdjust, Scope::CounterRead]).join(),
            "counter:adjust counter:read"
        );
        assert_eq!(
            Scopes::split("counter:read future:thing counter:history"),
            Scopes::of(&[Scope::CounterRead, Scope::CounterHistory])
        );
        assert_eq!(
            Scopes::DEFAULT.join(),
            "counter:history counter:increment counter:read"
        );
        assert_eq!(Scopes::split(""), Scopes::default());
    }

    #[test]
    fn actors_follow_the_principal() {
        assert_eq!(Principal::Anonymous.actor().id(), "anonymous");
        assert_eq!(Principal::AdminSecret.actor().id(), "admin");
        assert_eq!(
            tenant_key(T1, &[]).actor().id(),
            "00000000-0000-0000-0000-000000000009"
        );
    }
}
