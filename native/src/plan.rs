//! The plan of one Avro record, given by Python (`portfolio_tx.wire.native.plan`) as nested
//! tuples and compiled once into a tree of `Node`s that both the encoder and the decoder
//! walk. Only what the project's schemas use: records, enums, strings, int, long, bytes
//! decimals, arrays and `["null", X]` unions.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

pub enum Node {
    Long,
    Int,
    Str,
    /// `name` is the field's, for the error message
    Decimal {
        precision: usize,
        scale: i64,
        name: String,
    },
    /// `members[i]` is what symbol i decodes to (the Python enum member, or the symbol)
    Enum {
        symbols: Vec<String>,
        members: Vec<Py<PyAny>>,
    },
    /// `branch`: the index of the non-null branch in the union
    Nullable {
        branch: u64,
        inner: Box<Node>,
    },
    Array(Box<Node>),
    /// To decode a record, `cls` is called with the fields as keyword arguments; when
    /// `direct` (a dataclass whose `__init__` only stores exactly these fields), the
    /// instance is made with `object.__new__` and its fields stored as `__init__` would
    Record {
        cls: Py<PyAny>,
        fields: Vec<(Py<PyString>, Node)>,
        direct: bool,
    },
}

pub fn compile(plan: &Bound<'_, PyAny>) -> PyResult<Node> {
    let plan = plan.cast::<PyTuple>()?;
    let tag: String = plan.get_item(0)?.extract()?;
    Ok(match tag.as_str() {
        "long" => Node::Long,
        "int" => Node::Int,
        "string" => Node::Str,
        "decimal" => Node::Decimal {
            precision: plan.get_item(1)?.extract()?,
            scale: plan.get_item(2)?.extract()?,
            name: plan.get_item(3)?.extract()?,
        },
        "enum" => Node::Enum {
            symbols: plan.get_item(1)?.extract()?,
            members: plan.get_item(2)?.extract()?,
        },
        "nullable" => Node::Nullable {
            branch: plan.get_item(1)?.extract()?,
            inner: Box::new(compile(&plan.get_item(2)?)?),
        },
        "array" => Node::Array(Box::new(compile(&plan.get_item(1)?)?)),
        "record" => {
            let py = plan.py();
            let mut fields = Vec::new();
            for field in plan.get_item(2)?.try_iter()? {
                let field = field?;
                let field = field.cast::<PyTuple>()?;
                let name: String = field.get_item(0)?.extract()?;
                fields.push((
                    PyString::intern(py, &name).unbind(),
                    compile(&field.get_item(1)?)?,
                ));
            }
            Node::Record {
                cls: plan.get_item(1)?.unbind(),
                fields,
                direct: plan.get_item(3)?.extract()?,
            }
        }
        other => {
            return Err(PyTypeError::new_err(format!(
                "unsupported plan node {other:?}"
            )))
        }
    })
}
