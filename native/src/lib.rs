//! portfolio-tx's compiled core (PyO3): one `RecordCodec` per wire record, compiled once
//! from the plan `portfolio_tx.wire.native` derives from the schema, that encodes a record
//! to its Avro body and decodes a body back to the record. Decimals go through exact
//! scaled integers; the pure-Python encoder and fastavro stay the reference
//! (tests/unit/test_native_differential.py).

use pyo3::prelude::*;
use pyo3::exceptions::PyValueError;
use pyo3::types::{PyBytes, PyList, PyTuple};

mod decimal;
mod decode;
mod encode;
mod plan;

#[pyclass(frozen, module = "portfolio_tx_native")]
struct RecordCodec {
    node: plan::Node,
    decimal: Py<PyAny>,
    enumeration: Py<PyAny>,
    object_new: Py<PyAny>,
}

#[pymethods]
impl RecordCodec {
    #[new]
    fn new(plan: &Bound<'_, PyAny>) -> PyResult<Self> {
        let py = plan.py();
        Ok(RecordCodec {
            node: plan::compile(plan)?,
            decimal: py.import("decimal")?.getattr("Decimal")?.unbind(),
            enumeration: py.import("enum")?.getattr("Enum")?.unbind(),
            object_new: py
                .import("builtins")?
                .getattr("object")?
                .getattr("__new__")?
                .unbind(),
        })
    }

    /// The Avro binary body of `record` (no header).
    fn encode<'py>(&self, record: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
        let py = record.py();
        let types = encode::Types {
            decimal: self.decimal.bind(py).clone(),
            enumeration: self.enumeration.bind(py).clone(),
        };
        let mut out = Vec::with_capacity(256);
        encode::write(&mut out, &self.node, record, &types)?;
        Ok(PyBytes::new(py, &out))
    }

    /// The record in `value[start:]` and the offset where it ends (the caller rejects
    /// bytes after it).
    fn decode<'py>(
        &self,
        value: &Bound<'py, PyBytes>,
        start: usize,
    ) -> PyResult<(Bound<'py, PyAny>, usize)> {
        let py = value.py();
        let data = value.as_bytes();
        let mut reader = decode::Reader {
            data,
            at: start.min(data.len()),
        };
        let context = decode::Context {
            decimal: self.decimal.bind(py).clone(),
            object_new: self.object_new.bind(py).clone(),
        };
        let record = decode::read(py, &mut reader, &self.node, &context)?;
        Ok((record, reader.at))
    }

    /// For each of `values` (bytes: `header`, then the record's body, nothing after it),
    /// the record's fields at `wanted` (indices in schema order) as a tuple, without making
    /// the record: a list of them. ValueError for any value that does not start with
    /// `header`, is malformed, or has bytes after the record.
    fn rows<'py>(
        &self,
        values: &Bound<'py, PyAny>,
        header: &[u8],
        wanted: Vec<usize>,
    ) -> PyResult<Bound<'py, PyList>> {
        let py = values.py();
        let plan::Node::Record { fields, .. } = &self.node else {
            return Err(PyValueError::new_err("not a record plan"));
        };
        let mut slot_of = vec![usize::MAX; fields.len()];
        for (slot, &index) in wanted.iter().enumerate() {
            match slot_of.get_mut(index) {
                Some(free) if *free == usize::MAX => *free = slot,
                _ => return Err(PyValueError::new_err(format!("field {index} twice or none"))),
            }
        }
        let context = decode::Context {
            decimal: self.decimal.bind(py).clone(),
            object_new: self.object_new.bind(py).clone(),
        };
        let rows = PyList::empty(py);
        for value in values.try_iter()? {
            let value = value?;
            let data = value.cast::<PyBytes>()?.as_bytes();
            if !data.starts_with(header) {
                return Err(PyValueError::new_err("not the expected header"));
            }
            let mut reader = decode::Reader {
                data,
                at: header.len(),
            };
            let mut row: Vec<Option<Bound<'py, PyAny>>> = vec![None; wanted.len()];
            for ((_, field), &slot) in fields.iter().zip(slot_of.iter()) {
                if slot == usize::MAX {
                    decode::skip(py, &mut reader, field, &context)?;
                } else {
                    row[slot] = Some(decode::read(py, &mut reader, field, &context)?);
                }
            }
            if reader.at != data.len() {
                return Err(PyValueError::new_err("bytes after the end of the record"));
            }
            let row: Vec<Bound<'py, PyAny>> = row.into_iter().flatten().collect();
            rows.append(PyTuple::new(py, row)?)?;
        }
        Ok(rows)
    }
}

#[pymodule]
fn portfolio_tx_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RecordCodec>()?;
    Ok(())
}
