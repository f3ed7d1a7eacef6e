//! A counter's operation ledger: every change of its value is one operation, kept by the
//! counter's object in the same commit as the value. The ledger answers history, replays
//! idempotency keys (an operation's id is the client's key when one was sent), and lets
//! an operator check that a counter's operations sum to its value.

use crate::domain::time::rfc3339;
use crate::error::{ApiError, ApiResult};
use uuid::Uuid;

/// Operations are kept at least this long, so an idempotency key replays for at least
/// 48 hours (the contract's floor).
pub const MIN_RETENTION_DAYS: u64 = 2;

/// History pages: `?limit=` default and most.
pub const PAGE_DEFAULT: u32 = 50;
pub const PAGE_MAX: u32 = 100;

/// Operations one retention step folds into the baseline: bounded work per alarm.
pub const FOLD_BATCH: u64 = 1_000;

/// What an operation did. Stored as its code, so a row stays small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    /// The value a counter was created with (also 0).
    InitialValue,
    Increment,
    /// A set; its delta is the new value minus the old, 0 included.
    SetAdjustment,
    Import,
    /// Operations older than the retention, folded into one.
    Baseline,
}

impl OperationKind {
    const ALL: [OperationKind; 5] = [
        OperationKind::InitialValue,
        OperationKind::Increment,
        OperationKind::SetAdjustment,
        OperationKind::Import,
        OperationKind::Baseline,
    ];

    pub fn code(self) -> i64 {
        self as i64
    }

    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    pub fn name(self) -> &'static str {
        match self {
            OperationKind::InitialValue => "initial_value",
            OperationKind::Increment => "increment",
            OperationKind::SetAdjustment => "set_adjustment",
            OperationKind::Import => "import",
            OperationKind::Baseline => "baseline",
        }
    }

    /// A counter's first operation, and only there.
    pub fn is_root(self) -> bool {
        matches!(self, OperationKind::InitialValue | OperationKind::Baseline)
    }
}

/// Who made an operation: a credential, the administrator secret, or nobody known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Actor {
    #[default]
    Anonymous,
    Admin,
    Credential(Uuid),
}

impl Actor {
    /// `actor_id` as stored and shown.
    pub fn id(&self) -> String {
        match self {
            Actor::Anonymous => "anonymous".into(),
            Actor::Admin => "admin".into(),
            Actor::Credential(id) => id.hyphenated().to_string(),
        }
    }

    pub fn parse(raw: &str) -> Option<Actor> {
        match raw {
            "anonymous" => Some(Actor::Anonymous),
            "admin" => Some(Actor::Admin),
            _ if raw.len() == 36 => Uuid::try_parse(raw).ok().map(Actor::Credential),
            _ => None,
        }
    }
}

/// One operation as the ledger keeps it. `value_before` is `value_after - delta`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub id: Uuid,
    pub kind: OperationKind,
    pub delta: i64,
    pub value_after: i64,
    pub actor: String,
    /// When the object decided it, and when the commit that holds it was made.
    pub created_ms: u64,
    pub completed_ms: u64,
    /// JSON object text; `None` shows as `{}`.
    pub metadata: Option<String>,
}

/// What a keyed request asks for, to tell a retry from a reuse of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    Increment { delta: i64 },
    Set { value: i64 },
}

impl Requested {
    /// Whether `op` is what this request would have made: same kind, same delta or
    /// value. Anything else under the same key is a conflict.
    pub fn matches(self, op: &Operation) -> bool {
        match self {
            Requested::Increment { delta } => {
                op.kind == OperationKind::Increment && op.delta == delta
            }
            Requested::Set { value } => {
                op.kind == OperationKind::SetAdjustment && op.value_after == value
            }
        }
    }
}

/// A keyed request: `None` when its key is unused (perform it), the earlier operation
/// when it is a retry, or a conflict.
pub fn replay_of(earlier: Option<Operation>, requested: Requested) -> ApiResult<Option<Operation>> {
    match earlier {
        None => Ok(None),
        Some(op) if requested.matches(&op) => Ok(Some(op)),
        Some(_) => Err(ApiError::IdempotencyKeyReused),
    }
}

/// The operator's check of one counter's ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LedgerSums {
    pub operations: u64,
    pub sum_of_deltas: i64,
    /// Operations of a root kind (`initial_value`, `baseline`).
    pub roots: u64,
    /// Whether the oldest operation is of a root kind.
    pub oldest_is_root: bool,
}

impl LedgerSums {
    /// Holds when the deltas sum to the value and the oldest operation is the only root.
    pub fn reconciles(&self, value: i64) -> bool {
        self.sum_of_deltas == value && self.roots == 1 && self.oldest_is_root
    }
}

/// One operation as the contract shows it. Written by hand: every field is a number, a
/// UUID, a fixed word or an RFC 3339 time (nothing to escape), and `metadata` is JSON
/// the object itself stored.
pub fn operation_json(out: &mut String, counter_id: &str, op: &Operation) {
    use std::fmt::Write;
    let _ = write!(
        out,
        r#"{{"operation_id":"{}","counter_id":"{counter_id}","kind":"{}","delta":{},"value_before":{},"value_after":{},"actor_id":"{}","metadata":{},"created_at":"{}","completed_at":"{}"}}"#,
        op.id.hyphenated(),
        op.kind.name(),
        op.delta,
        op.value_after - op.delta,
        op.value_after,
        op.actor,
        op.metadata.as_deref().unwrap_or("{}"),
        rfc3339(op.created_ms),
        rfc3339(op.completed_ms),
    );
}

/// Operations as one JSON array of rows, for one `INSERT … SELECT … FROM json_each(?)`:
/// a batch's operations cost one statement however many there are.
pub fn rows_json(ops: &[Operation]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(ops.len() * 120 + 2);
    out.push('[');
    for (i, op) in ops.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let metadata = op.metadata.as_deref().map_or_else(
            || "null".to_string(),
            |m| serde_json::Value::from(m).to_string(),
        );
        let _ = write!(
            out,
            r#"["{}",{},{},{},"{}",{},{},{metadata}]"#,
            op.id.simple(),
            op.kind.code(),
            op.delta,
            op.value_after,
            op.actor,
            op.created_ms,
            op.completed_ms,
        );
    }
    out.push(']');
    out
}

/// An operation an import brings: as exported (`value_after` known, kept exactly), or
/// an addition from another service (`value_after` `null`: it adds `delta` to whatever
/// the value is, as an `import`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub op: Operation,
    pub additive: bool,
}

impl Incoming {
    /// From an `operation` record of the export format (already checked by
    /// `domain::transfer`).
    pub fn from_record(v: &serde_json::Value) -> Option<Incoming> {
        let additive = v.get("value_after")?.is_null();
        Some(Incoming {
            op: Operation {
                id: Uuid::try_parse(v.get("id")?.as_str()?).ok()?,
                kind: OperationKind::ALL
                    .into_iter()
                    .find(|k| Some(k.name()) == v.get("kind").and_then(|k| k.as_str()))?,
                delta: v.get("delta")?.as_i64()?,
                value_after: v.get("value_after")?.as_i64().unwrap_or(0),
                actor: v.get("actor")?.as_str()?.to_string(),
                created_ms: v.get("created_ms")?.as_u64()?,
                completed_ms: v.get("completed_ms")?.as_u64()?,
                metadata: v
                    .get("metadata")
                    .filter(|m| m.is_object())
                    .map(|m| m.to_string()),
            },
            additive,
        })
    }
}

/// What an import adds to a ledger that stands at `value`: the operations it does not
/// have yet (`known` says which ids it has), each continuing the one before — an
/// exported operation must start where the ledger stands (`value_after - delta`), an
/// addition is applied to it — and the value they reach. Operations already in the
/// ledger are skipped, so the same import twice adds nothing.
pub fn extend(
    mut value: i64,
    incoming: Vec<Incoming>,
    known: impl Fn(&Uuid) -> bool,
) -> Result<(Vec<Operation>, i64), String> {
    let mut new: Vec<Operation> = Vec::new();
    for Incoming { mut op, additive } in incoming {
        if known(&op.id) || new.iter().any(|o| o.id == op.id) {
            continue;
        }
        if additive {
            op.value_after = value
                .checked_add(op.delta)
                .filter(|v| crate::domain::counter::check_value(*v).is_ok())
                .ok_or_else(|| {
                    format!("adding {} to {value} leaves the counter's range", op.delta)
                })?;
        } else if op.value_after.checked_sub(op.delta) != Some(value) {
            return Err(format!(
                "operation {} starts at {} but the counter stands at {value}",
                op.id.hyphenated(),
                op.value_after.wrapping_sub(op.delta)
            ));
        }
        value = op.value_after;
        new.push(op);
    }
    Ok((new, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(kind: OperationKind, delta: i64, value_after: i64) -> Operation {
        Operation {
            id: Uuid::from_u128(0x0190a6b2_3c4d_7e8f_9a0b_1c2d3e4f5a6b),
            kind,
            delta,
            value_after,
            actor: "anonymous".into(),
            created_ms: 0,
            completed_ms: 1,
            metadata: None,
        }
    }

    #[test]
    fn kinds_round_trip_through_their_codes() {
        for kind in OperationKind::ALL {
            assert_eq!(OperationKind::from_code(kind.code()), Some(kind));
        }
        assert_eq!(OperationKind::from_code(9), None);
        let roots: Vec<_> = OperationKind::ALL
            .into_iter()
            .filter(|k| k.is_root())
            .collect();
        assert_eq!(
            roots,
            [OperationKind::InitialValue, OperationKind::Baseline]
        );
    }

    #[test]
    fn actors() {
        let id = "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b";
        for raw in ["anonymous", "admin", id] {
            assert_eq!(Actor::parse(raw).unwrap().id(), raw);
        }
        assert_eq!(Actor::parse("root"), None);
        assert_eq!(Actor::parse(&id.to_uppercase()).unwrap().id(), id);
    }

    #[test]
    fn a_key_replays_only_the_same_request() {
        let inc = op(OperationKind::Increment, 5, 12);
        let set = op(OperationKind::SetAdjustment, -2, 12);
        assert_eq!(
            replay_of(None, Requested::Increment { delta: 5 }).unwrap(),
            None
        );
        assert_eq!(
            replay_of(Some(inc.clone()), Requested::Increment { delta: 5 }).unwrap(),
            Some(inc.clone())
        );
        for (earlier, requested) in [
            (inc.clone(), Requested::Increment { delta: 6 }),
            (inc.clone(), Requested::Set { value: 12 }),
            (set.clone(), Requested::Set { value: 13 }),
            (set.clone(), Requested::Increment { delta: -2 }),
            (
                op(OperationKind::InitialValue, 12, 12),
                Requested::Set { value: 12 },
            ),
        ] {
            assert_eq!(
                replay_of(Some(earlier), requested).unwrap_err(),
                ApiError::IdempotencyKeyReused
            );
        }
        assert!(replay_of(Some(set), Requested::Set { value: 12 })
            .unwrap()
            .is_some());
    }

    #[test]
    fn reconciliation_needs_the_sum_and_one_root_first() {
        let sums = |sum_of_deltas, roots, oldest_is_root| LedgerSums {
            operations: 3,
            sum_of_deltas,
            roots,
            oldest_is_root,
        };
        assert!(sums(7, 1, true).reconciles(7));
        assert!(!sums(7, 1, true).reconciles(8));
        assert!(!sums(7, 2, true).reconciles(7));
        assert!(!sums(7, 1, false).reconciles(7));
        assert!(!LedgerSums::default().reconciles(0));
    }

    #[test]
    fn an_import_continues_the_ledger_once() {
        let id = |n: u128| Uuid::from_u128(n);
        let exported = |n, kind, delta, after| Incoming {
            op: Operation {
                id: id(n),
                ..op(kind, delta, after)
            },
            additive: false,
        };
        let file = vec![
            exported(1, OperationKind::InitialValue, 5, 5),
            exported(2, OperationKind::Increment, 2, 7),
            exported(3, OperationKind::SetAdjustment, -7, 0),
        ];
        let (new, value) = extend(0, file.clone(), |_| false).unwrap();
        assert_eq!((new.len(), value), (3, 0));
        // Again: every id is known, nothing is added.
        let (new, value) = extend(0, file.clone(), |_| true).unwrap();
        assert_eq!((new.len(), value), (0, 0));
        // Resumed after the first two.
        let (new, value) = extend(7, file.clone(), |i| *i != id(3)).unwrap();
        assert_eq!((new.len(), value), (1, 0));
        // A gap in the chain is refused.
        let err = extend(1, file[1..].to_vec(), |_| false).unwrap_err();
        assert!(
            err.contains("starts at 5 but the counter stands at 1"),
            "{err}"
        );
        // Additions apply to where the counter stands, within its range.
        let add = |n, delta| Incoming {
            op: Operation {
                id: id(n),
                ..op(OperationKind::Import, delta, 0)
            },
            additive: true,
        };
        let (new, value) = extend(10, vec![add(9, 32), add(9, 32)], |_| false).unwrap();
        assert_eq!((new.len(), value, new[0].value_after), (1, 42, 42));
        let max = crate::domain::counter::MAX_SAFE;
        assert!(extend(max, vec![add(8, 1)], |_| false).is_err());
    }

    #[test]
    fn records_read_back_as_operations() {
        let line = serde_json::json!({"type": "operation", "counter": "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b",
            "id": "0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b", "kind": "set_adjustment", "delta": -3,
            "value_after": 4, "actor": "anonymous", "created_ms": 0, "completed_ms": 1, "metadata": null});
        let incoming = Incoming::from_record(&line).unwrap();
        assert_eq!(incoming.op, op(OperationKind::SetAdjustment, -3, 4));
        assert!(!incoming.additive);
        let mut addition = line.clone();
        addition["value_after"] = serde_json::Value::Null;
        addition["metadata"] = serde_json::json!({"source": "hits"});
        let incoming = Incoming::from_record(&addition).unwrap();
        assert!(incoming.additive);
        assert_eq!(
            incoming.op.metadata.as_deref(),
            Some(r#"{"source":"hits"}"#)
        );
    }

    #[test]
    fn golden_operation_shape() {
        let mut out = String::new();
        operation_json(&mut out, "c1", &op(OperationKind::SetAdjustment, -3, 4));
        assert_eq!(
            out,
            r#"{"operation_id":"0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b","counter_id":"c1","kind":"set_adjustment","delta":-3,"value_before":7,"value_after":4,"actor_id":"anonymous","metadata":{},"created_at":"1970-01-01T00:00:00.000Z","completed_at":"1970-01-01T00:00:00.001Z"}"#
        );
        let mut imported = op(OperationKind::Import, 4, 4);
        imported.metadata = Some(r#"{"source":"x"}"#.into());
        let rows = rows_json(&[op(OperationKind::Increment, 1, 1), imported]);
        assert_eq!(
            rows,
            r#"[["0190a6b23c4d7e8f9a0b1c2d3e4f5a6b",1,1,1,"anonymous",0,1,null],["0190a6b23c4d7e8f9a0b1c2d3e4f5a6b",3,4,4,"anonymous",0,1,"{\"source\":\"x\"}"]]"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&rows).unwrap();
        assert_eq!(parsed[1][7], r#"{"source":"x"}"#);
    }
}
