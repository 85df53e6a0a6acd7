//! CEL with the cel-rust crate: the environment rules are compiled in (the standard library,
//! the `strings`, `lists` and `math` extensions, and the parts of Kubernetes' own CEL library
//! written here), objects as CEL values, and compile errors with their position.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use cel::common::types::{DYN_TYPE, INT_TYPE, LIST_TYPE, STRING_TYPE};
use cel::common::value::{CowVal, Val};
use cel::{Env, ExecutionError, Program, Value};

/// A compile error: the message and its 1-based line and column in the expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub message: String,
    pub line: u32,
    pub column: u32,
}

/// The environment every expression is compiled and evaluated in (built once per instance).
pub fn env() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        // Each returns Err only for a name declared twice, which these never are.
        env.add_extension(cel::extensions::strings)
            .expect("strings extension");
        env.add_extension(cel::extensions::lists)
            .expect("lists extension");
        env.add_extension(cel::extensions::math)
            .expect("math extension");
        add_kubernetes_library(&mut env).expect("Kubernetes library");
        Arc::new(env)
    })
}

/// Compiles `source`; the first parse error with its position.
pub fn compile(source: &str) -> Result<Program, CompileError> {
    if source.trim().is_empty() {
        return Err(CompileError {
            message: "the expression is empty".to_owned(),
            line: 1,
            column: 1,
        });
    }
    env().compile(source).map_err(|errors| {
        let first = errors.errors.first();
        CompileError {
            message: first.map_or_else(|| errors.to_string(), |e| e.msg.clone()),
            line: first.map_or(1, |e| e.pos.0.max(1) as u32),
            column: first.map_or(1, |e| e.pos.1.max(1) as u32),
        }
    })
}

/// A JSON document as a CEL value. By hand rather than `cel::to_value`, which takes every
/// non-negative JSON integer as a `uint` (serde_json serializes them as u64): Kubernetes
/// objects' integers are `int` in CEL, and `object.spec.replicas * 2` must not fail on
/// `uint * int`.
pub fn json_to_cel(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(u)) => Value::UInt(u),
            _ => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::String(Arc::new(s.clone())),
        serde_json::Value::Array(items) => {
            Value::List(Arc::new(items.iter().map(json_to_cel).collect()))
        }
        serde_json::Value::Object(map) => Value::from(
            map.iter()
                .map(|(k, v)| (k.clone(), json_to_cel(v)))
                .collect::<HashMap<String, Value>>(),
        ),
    }
}

/// Kubernetes' list library (`isSorted`, `sum`, `min`, `max`, `indexOf`, `lastIndexOf` on
/// lists), regex library (`find`, `findAll`) and sets extension (`sets.contains`,
/// `sets.equivalent`, `sets.intersects`), after
/// <https://kubernetes.io/docs/reference/using-api/cel/>. cel-rust does not ship them; each
/// is a few lines over its own values.
fn add_kubernetes_library(env: &mut Env) -> Result<(), cel::DeclarationError> {
    env.add_member_overload("isSorted", "list.isSorted()", LIST_TYPE, vec![], is_sorted)?;
    env.add_member_overload("sum", "list.sum()", LIST_TYPE, vec![], sum)?;
    env.add_member_overload("min", "list.min()", LIST_TYPE, vec![], min)?;
    env.add_member_overload("max", "list.max()", LIST_TYPE, vec![], max)?;
    env.add_member_overload(
        "indexOf",
        "list.indexOf(dyn)",
        LIST_TYPE,
        vec![DYN_TYPE],
        index_of,
    )?;
    env.add_member_overload(
        "lastIndexOf",
        "list.lastIndexOf(dyn)",
        LIST_TYPE,
        vec![DYN_TYPE],
        last_index_of,
    )?;
    env.add_member_overload(
        "find",
        "string.find(string)",
        STRING_TYPE,
        vec![STRING_TYPE],
        find,
    )?;
    env.add_member_overload(
        "findAll",
        "string.findAll(string)",
        STRING_TYPE,
        vec![STRING_TYPE],
        find_all,
    )?;
    env.add_member_overload(
        "findAll",
        "string.findAll(string,int)",
        STRING_TYPE,
        vec![STRING_TYPE, INT_TYPE],
        find_all,
    )?;
    env.add_overload(
        "sets.contains",
        "sets.contains(list,list)",
        vec![LIST_TYPE, LIST_TYPE],
        sets_contains,
    )?;
    env.add_overload(
        "sets.equivalent",
        "sets.equivalent(list,list)",
        vec![LIST_TYPE, LIST_TYPE],
        sets_equivalent,
    )?;
    env.add_overload(
        "sets.intersects",
        "sets.intersects(list,list)",
        vec![LIST_TYPE, LIST_TYPE],
        sets_intersects,
    )?;
    Ok(())
}

type Args<'b, 'v> = Vec<CowVal<'b, 'v>>;
type List = Arc<Vec<Value>>;
type Out<'b, 'v> = Result<CowVal<'b, 'v>, ExecutionError>;

fn values(function: &str, args: &[CowVal<'_, '_>]) -> Result<Vec<Value>, ExecutionError> {
    args.iter()
        .map(|a| {
            let val: &dyn Val = &**a;
            Value::try_from(val).map_err(|e| ExecutionError::function_error(function, e))
        })
        .collect()
}

fn list_arg(function: &str, value: &Value) -> Result<Arc<Vec<Value>>, ExecutionError> {
    match value {
        Value::List(items) => Ok(items.clone()),
        other => Err(ExecutionError::function_error(
            function,
            format!("expected a list, got {:?}", other.type_of()),
        )),
    }
}

fn out<'b, 'v>(value: Value) -> Out<'b, 'v> {
    Ok(CowVal::Owned(Box::<dyn Val>::try_from(value)?))
}

/// Orders two values of one comparable type (numbers, strings, booleans), as Kubernetes'
/// list library requires of `isSorted`, `min` and `max`.
fn compare(function: &str, a: &Value, b: &Value) -> Result<Ordering, ExecutionError> {
    let ordering = match (a, b) {
        (Value::Int(x), Value::Int(y)) => x.partial_cmp(y),
        (Value::UInt(x), Value::UInt(y)) => x.partial_cmp(y),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y),
        (Value::String(x), Value::String(y)) => x.partial_cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.partial_cmp(y),
        _ => None,
    };
    ordering.ok_or_else(|| {
        ExecutionError::function_error(
            function,
            format!("cannot compare {:?} and {:?}", a.type_of(), b.type_of()),
        )
    })
}

fn is_sorted<'b, 'v>(args: Args<'b, 'v>) -> Out<'b, 'v> {
    let args = values("isSorted", &args)?;
    let list = list_arg("isSorted", &args[0])?;
    for pair in list.windows(2) {
        if compare("isSorted", &pair[0], &pair[1])? == Ordering::Greater {
            return out(Value::Bool(false));
        }
    }
    out(Value::Bool(true))
}

fn sum<'b, 'v>(args: Args<'b, 'v>) -> Out<'b, 'v> {
    let args = values("sum", &args)?;
    let list = list_arg("sum", &args[0])?;
    let mut total = Value::Int(0);
    for (i, item) in list.iter().enumerate() {
        total = match (&total, item) {
            (_, item) if i == 0 => item.clone(),
            (Value::Int(a), Value::Int(b)) => Value::Int(
                a.checked_add(*b)
                    .ok_or_else(|| ExecutionError::function_error("sum", "integer overflow"))?,
            ),
            (Value::UInt(a), Value::UInt(b)) => Value::UInt(
                a.checked_add(*b)
                    .ok_or_else(|| ExecutionError::function_error("sum", "integer overflow"))?,
            ),
            (Value::Float(a), Value::Float(b)) => Value::Float(a + b),
            (a, b) => {
                return Err(ExecutionError::function_error(
                    "sum",
                    format!("cannot add {:?} and {:?}", a.type_of(), b.type_of()),
                ));
            }
        };
    }
    out(total)
}

fn extreme<'b, 'v>(function: &str, args: Args<'b, 'v>, wanted: Ordering) -> Out<'b, 'v> {
    let args = values(function, &args)?;
    let list = list_arg(function, &args[0])?;
    let mut best: Option<&Value> = None;
    for item in list.iter() {
        best = match best {
            Some(b) if compare(function, item, b)? != wanted => Some(b),
            _ => Some(item),
        };
    }
    match best {
        Some(b) => out(b.clone()),
        None => Err(ExecutionError::function_error(
            function,
            "the list is empty",
        )),
    }
}

fn min<'b, 'v>(args: Args<'b, 'v>) -> Out<'b, 'v> {
    extreme("min", args, Ordering::Less)
}

fn max<'b, 'v>(args: Args<'b, 'v>) -> Out<'b, 'v> {
    extreme("max", args, Ordering::Greater)
}

fn index_of<'b, 'v>(args: Args<'b, 'v>) -> Out<'b, 'v> {
    let args = values("indexOf", &args)?;
    let list = list_arg("indexOf", &args[0])?;
    let index = list.iter().position(|v| v == &args[1]);
    out(Value::Int(index.map_or(-1, |i| i as i64)))
}

fn last_index_of<'b, 'v>(args: Args<'b, 'v>) -> Out<'b, 'v> {
    let args = values("lastIndexOf", &args)?;
    let list = list_arg("lastIndexOf", &args[0])?;
    let index = list.iter().rposition(|v| v == &args[1]);
    out(Value::Int(index.map_or(-1, |i| i as i64)))
}

fn string_arg(function: &str, value: &Value) -> Result<Arc<String>, ExecutionError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(ExecutionError::function_error(
            function,
            format!("expected a string, got {:?}", other.type_of()),
        )),
    }
}

fn regex(function: &str, pattern: &str) -> Result<regex::Regex, ExecutionError> {
    regex::Regex::new(pattern).map_err(|e| ExecutionError::function_error(function, e))
}

fn find<'b, 'v>(args: Args<'b, 'v>) -> Out<'b, 'v> {
    let args = values("find", &args)?;
    let text = string_arg("find", &args[0])?;
    let re = regex("find", &string_arg("find", &args[1])?)?;
    let found = re.find(&text).map_or("", |m| m.as_str()).to_owned();
    out(Value::String(Arc::new(found)))
}

fn find_all<'b, 'v>(args: Args<'b, 'v>) -> Out<'b, 'v> {
    let args = values("findAll", &args)?;
    let text = string_arg("findAll", &args[0])?;
    let re = regex("findAll", &string_arg("findAll", &args[1])?)?;
    // A negative limit means all matches, as in Kubernetes (Go's FindAllString).
    let limit = match args.get(2) {
        Some(Value::Int(n)) if *n >= 0 => *n as usize,
        _ => usize::MAX,
    };
    let found: Vec<Value> = re
        .find_iter(&text)
        .take(limit)
        .map(|m| Value::String(Arc::new(m.as_str().to_owned())))
        .collect();
    out(Value::List(Arc::new(found)))
}

fn two_lists(function: &str, args: &[CowVal<'_, '_>]) -> Result<(List, List), ExecutionError> {
    let args = values(function, args)?;
    Ok((list_arg(function, &args[0])?, list_arg(function, &args[1])?))
}

fn sets_contains<'b, 'v>(args: Args<'b, 'v>) -> Out<'b, 'v> {
    let (a, b) = two_lists("sets.contains", &args)?;
    out(Value::Bool(b.iter().all(|x| a.contains(x))))
}

fn sets_equivalent<'b, 'v>(args: Args<'b, 'v>) -> Out<'b, 'v> {
    let (a, b) = two_lists("sets.equivalent", &args)?;
    out(Value::Bool(
        b.iter().all(|x| a.contains(x)) && a.iter().all(|x| b.contains(x)),
    ))
}

fn sets_intersects<'b, 'v>(args: Args<'b, 'v>) -> Out<'b, 'v> {
    let (a, b) = two_lists("sets.intersects", &args)?;
    out(Value::Bool(b.iter().any(|x| a.contains(x))))
}
