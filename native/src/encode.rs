//! Avro binary encoding of a Python record by its plan: byte for byte what
//! `portfolio_tx.wire.encoder` (the pure-Python reference) writes, including its errors'
//! kinds (ValueError for a value that does not fit, TypeError for a wrong type, KeyError
//! for an unknown enum symbol).

use pyo3::exceptions::{PyKeyError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt, PyString, PyTuple};

use crate::decimal::{small_avro_bytes, unscaled, unscaled_small, Unfit};
use crate::plan::Node;

/// The Python types the encoder tells apart.
pub struct Types<'py> {
    pub decimal: Bound<'py, PyAny>,
    pub enumeration: Bound<'py, PyAny>,
}

fn varint(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z > 0x7F {
        out.push((z as u8 & 0x7F) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn integer(value: &Bound<'_, PyAny>, min: i64, max: i64, what: &str) -> PyResult<i64> {
    let n: i64 = value.extract().map_err(|_| {
        PyValueError::new_err(format!(
            "{} is not an Avro {what}",
            value.repr().map(|r| r.to_string()).unwrap_or_default()
        ))
    })?;
    if !(min..=max).contains(&n) {
        return Err(PyValueError::new_err(format!("{n} is not an Avro {what}")));
    }
    Ok(n)
}

fn decimal_text(value: &Bound<'_, PyAny>, types: &Types<'_>) -> PyResult<String> {
    if let Ok(flag) = value.cast::<PyBool>() {
        return Ok(if flag.is_true() { "1" } else { "0" }.to_string());
    }
    if value.is_instance(&types.decimal)? || value.is_instance_of::<PyInt>() {
        return Ok(value.str()?.to_str()?.to_owned());
    }
    Err(PyTypeError::new_err(format!(
        "conversion from {} to Decimal is not supported",
        value.get_type().name()?
    )))
}

pub fn write(
    out: &mut Vec<u8>,
    node: &Node,
    value: &Bound<'_, PyAny>,
    types: &Types<'_>,
) -> PyResult<()> {
    match node {
        Node::Long => varint(out, integer(value, i64::MIN, i64::MAX, "long")?),
        Node::Int => varint(
            out,
            integer(value, i32::MIN as i64, i32::MAX as i64, "int")?,
        ),
        Node::Str => {
            let text = value
                .cast::<PyString>()
                .map_err(|_| PyTypeError::new_err("not a string"))?
                .to_str()?;
            varint(out, text.len() as i64);
            out.extend_from_slice(text.as_bytes());
        }
        Node::Decimal {
            precision, scale, ..
        } => {
            let text = decimal_text(value, types)?;
            if let Some((negative, magnitude)) = unscaled_small(&text, *precision, *scale) {
                let (bytes, length) = small_avro_bytes(negative, magnitude);
                varint(out, length as i64);
                out.extend_from_slice(&bytes[16 - length..]);
                return Ok(());
            }
            let number = unscaled(&text, *precision, *scale).map_err(|why| match why {
                Unfit::Malformed => PyValueError::new_err(format!("not a decimal: {text}")),
                _ => PyValueError::new_err(format!(
                    "{text} does not fit decimal({precision},{scale})"
                )),
            })?;
            let bytes = number.avro_bytes();
            varint(out, bytes.len() as i64);
            out.extend_from_slice(&bytes);
        }
        Node::Enum { symbols, .. } => {
            let name = if value.is_instance(&types.enumeration)? {
                value.getattr("value")?
            } else {
                value.clone()
            };
            let text = name
                .cast::<PyString>()
                .ok()
                .map(|s| s.to_str())
                .transpose()?;
            let index = text.and_then(|t| symbols.iter().position(|s| s == t));
            match index {
                Some(i) => varint(out, i as i64),
                None => return Err(PyKeyError::new_err(name.unbind())),
            }
        }
        Node::Nullable { branch, inner } => {
            if value.is_none() {
                varint(out, 1 - *branch as i64);
            } else {
                varint(out, *branch as i64);
                write(out, inner, value, types)?;
            }
        }
        Node::Array(item) => {
            if value.is_truthy()? {
                varint(out, value.len()? as i64);
                for element in value.try_iter()? {
                    write(out, item, &element?, types)?;
                }
            }
            out.push(0);
        }
        Node::Record { fields, .. } => {
            // a plain tuple is the record's fields in schema order (the positional form the
            // worker's outcome takes); anything else is read by attribute
            if let Ok(values) = value.cast_exact::<PyTuple>() {
                if values.len() != fields.len() {
                    return Err(PyValueError::new_err(format!(
                        "a record of {} fields given as a tuple of {}",
                        fields.len(),
                        values.len()
                    )));
                }
                for ((_, field), item) in fields.iter().zip(values.iter()) {
                    write(out, field, &item, types)?;
                }
            } else {
                for (name, field) in fields {
                    write(out, field, &value.getattr(name.bind(value.py()))?, types)?;
                }
            }
        }
    }
    Ok(())
}
