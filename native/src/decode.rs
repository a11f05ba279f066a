//! Avro binary decoding of a record body by its plan into the Python record: what
//! `fastavro.schemaless_reader` with the reading schema, then `Shape.from_avro`, build
//! (decimals as `Decimal` with the wire's exponent, enums as the Python members, arrays as
//! tuples). Every malformed body raises ValueError.

use pyo3::exceptions::PyValueError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyString, PyTuple};

use crate::decimal::from_twos_complement;
use crate::plan::Node;

/// The Python callables the decoder builds values with.
pub struct Context<'py> {
    pub decimal: Bound<'py, PyAny>,
    pub object_new: Bound<'py, PyAny>,
}

pub struct Reader<'a> {
    pub data: &'a [u8],
    pub at: usize,
}

fn malformed(why: &str) -> PyErr {
    PyValueError::new_err(why.to_string())
}

impl<'a> Reader<'a> {
    fn long(&mut self) -> PyResult<i64> {
        let mut z: u64 = 0;
        let mut shift = 0u32;
        loop {
            let byte = *self
                .data
                .get(self.at)
                .ok_or_else(|| malformed("truncated varint"))?;
            self.at += 1;
            if shift == 63 && byte > 1 {
                return Err(malformed("varint longer than a long"));
            }
            z |= ((byte & 0x7F) as u64) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return Err(malformed("varint longer than a long"));
            }
        }
        Ok((z >> 1) as i64 ^ -((z & 1) as i64))
    }

    fn bytes(&mut self) -> PyResult<&'a [u8]> {
        let length = self.long()?;
        if length < 0 {
            return Err(malformed("negative length"));
        }
        let end = self
            .at
            .checked_add(length as usize)
            .filter(|&end| end <= self.data.len());
        let end = end.ok_or_else(|| malformed("truncated bytes"))?;
        let slice = &self.data[self.at..end];
        self.at = end;
        Ok(slice)
    }
}

pub fn read<'py>(
    py: Python<'py>,
    reader: &mut Reader<'_>,
    node: &Node,
    context: &Context<'py>,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(match node {
        Node::Long | Node::Int => PyInt::new(py, reader.long()?).into_any(),
        Node::Str => {
            let text =
                std::str::from_utf8(reader.bytes()?).map_err(|e| malformed(&e.to_string()))?;
            PyString::new(py, text).into_any()
        }
        Node::Decimal {
            precision,
            scale,
            name,
        } => {
            let data = reader.bytes()?;
            let number = from_twos_complement(data, *precision).ok_or_else(|| {
                PyValueError::new_err(format!("{name} does not fit decimal({precision},{scale})"))
            })?;
            context.decimal.call1((format!("{number}E-{scale}"),))?
        }
        Node::Enum { members, .. } => {
            let index = reader.long()?;
            let member = usize::try_from(index).ok().and_then(|i| members.get(i));
            member
                .ok_or_else(|| malformed("enum index out of range"))?
                .bind(py)
                .clone()
        }
        Node::Nullable { branch, inner } => match reader.long()? {
            b if b == *branch as i64 => read(py, reader, inner, context)?,
            b if b == 1 - *branch as i64 => py.None().into_bound(py),
            _ => return Err(malformed("union branch out of range")),
        },
        Node::Array(item) => {
            let mut items = Vec::new();
            loop {
                let mut count = reader.long()?;
                if count == 0 {
                    break;
                }
                if count < 0 {
                    count = count
                        .checked_neg()
                        .ok_or_else(|| malformed("bad block count"))?;
                    reader.long()?; // the block's size in bytes
                }
                for _ in 0..count {
                    items.push(read(py, reader, item, context)?);
                }
            }
            PyTuple::new(py, items)?.into_any()
        }
        Node::Record {
            cls,
            fields,
            direct: true,
        } => {
            let record = context.object_new.call1((cls.bind(py),))?;
            for (name, field) in fields {
                let value = read(py, reader, field, context)?;
                // object.__setattr__, what a frozen dataclass's __init__ calls
                let stored = unsafe {
                    ffi::PyObject_GenericSetAttr(record.as_ptr(), name.as_ptr(), value.as_ptr())
                };
                if stored < 0 {
                    return Err(PyErr::fetch(py));
                }
            }
            record
        }
        Node::Record { cls, fields, .. } => {
            let kwargs = PyDict::new(py);
            for (name, field) in fields {
                kwargs.set_item(name.bind(py), read(py, reader, field, context)?)?;
            }
            cls.bind(py).call((), Some(&kwargs))?
        }
    })
}

/// Read over a value of `node` without building it, checked as `read` checks it (the simple
/// kinds here; the others are read and dropped).
pub fn skip<'py>(
    py: Python<'py>,
    reader: &mut Reader<'_>,
    node: &Node,
    context: &Context<'py>,
) -> PyResult<()> {
    match node {
        Node::Long | Node::Int => {
            reader.long()?;
        }
        Node::Str => {
            std::str::from_utf8(reader.bytes()?).map_err(|e| malformed(&e.to_string()))?;
        }
        Node::Enum { members, .. } => {
            let index = reader.long()?;
            if usize::try_from(index).ok().filter(|&i| i < members.len()).is_none() {
                return Err(malformed("enum index out of range"));
            }
        }
        _ => {
            read(py, reader, node, context)?;
        }
    }
    Ok(())
}
