package bench;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.math.RoundingMode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;

/**
 * The contract's wire format (CONTRACT §3): Avro single-object encoding, C3 01 + the 8-byte
 * little-endian CRC-64-AVRO fingerprint of the schema's Parsing Canonical Form + the Avro
 * binary body. The fingerprints come from schemas/*.avsc through Avro's own
 * SchemaNormalization; a value whose header names another schema is rejected, so the bodies
 * can be read and written field by field in the schemas' order with Avro's BinaryDecoder and
 * BinaryEncoder (no GenericRecord per event). Decimals are bytes, decimal(38,18) (the
 * outcome's state_cash and lot costs decimal(76,36)): the unscaled integer, big-endian two's
 * complement.
 */
final class Wire {
    static final int WIRE_SCALE = 18;
    static final int EXACT_SCALE = 36;

    record Fill(String eventId, String sessionId, long cycleId, String symbol, boolean buy,
                BigDecimal quantity, BigDecimal price, BigDecimal fee, long ts) {}

    /** kind: 0 REALIZED, 1 FUNDING, 2 TRANSFER (the enum's symbol order). */
    record Pnl(String eventId, String sessionId, long cycleId, int kind, BigDecimal amount,
               long ts) {}

    record Marker(String sessionId, long cycleId, int fillCount, int pnlCount, long ts) {}

    record Mark(String symbol, BigDecimal price, long ts) {}

    final byte[] fill;
    final byte[] pnl;
    final byte[] marker;
    final byte[] mark;
    final byte[] outcome;
    private BinaryDecoder decoder;

    Wire(Path schemas) {
        fill = header(schemas.resolve("fill.avsc"));
        pnl = header(schemas.resolve("pnl_event.avsc"));
        marker = header(schemas.resolve("cycle_marker.avsc"));
        mark = header(schemas.resolve("mark_price.avsc"));
        outcome = header(schemas.resolve("cycle_outcome.avsc"));
    }

    static byte[] header(Path avsc) {
        try {
            Schema schema = new Schema.Parser().parse(Files.readString(avsc));
            long fingerprint = SchemaNormalization.parsingFingerprint64(schema);
            byte[] out = new byte[10];
            out[0] = (byte) 0xC3;
            out[1] = (byte) 0x01;
            for (int i = 0; i < 8; i++) {
                out[2 + i] = (byte) (fingerprint >>> (8 * i));  // little-endian
            }
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private BinaryDecoder body(byte[] value, byte[] expected, String what) {
        if (value == null || value.length < 10
                || !Arrays.equals(value, 0, 10, expected, 0, 10)) {
            throw new IllegalArgumentException("not a single-object encoded " + what);
        }
        decoder = DecoderFactory.get().binaryDecoder(value, 10, value.length - 10, decoder);
        return decoder;
    }

    private void end(String what) throws IOException {
        if (!decoder.isEnd()) {
            throw new IllegalArgumentException("bytes after the end of the " + what);
        }
    }

    static BigDecimal decimal(BinaryDecoder in) throws IOException {
        return new BigDecimal(new BigInteger(in.readBytes(null).array()), WIRE_SCALE);
    }

    Fill fill(byte[] value) {
        try {
            BinaryDecoder in = body(value, fill, "Fill");
            Fill out = new Fill(in.readString(), in.readString(), in.readLong(), in.readString(),
                    in.readEnum() == 0, decimal(in), decimal(in), decimal(in), in.readLong());
            end("Fill");
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    Pnl pnl(byte[] value) {
        try {
            BinaryDecoder in = body(value, pnl, "PnlEvent");
            String eventId = in.readString();
            String sessionId = in.readString();
            long cycleId = in.readLong();
            int kind = in.readEnum();
            BigDecimal amount = decimal(in);
            if (in.readIndex() == 1) {
                in.readString();  // symbol: not used by the rule
            }
            Pnl out = new Pnl(eventId, sessionId, cycleId, kind, amount, in.readLong());
            end("PnlEvent");
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    Marker marker(byte[] value) {
        try {
            BinaryDecoder in = body(value, marker, "CycleMarker");
            Marker out = new Marker(in.readString(), in.readLong(), in.readInt(), in.readInt(),
                    in.readLong());
            end("CycleMarker");
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    Mark mark(byte[] value) {
        try {
            BinaryDecoder in = body(value, mark, "MarkPrice");
            Mark out = new Mark(in.readString(), decimal(in), in.readLong());
            end("MarkPrice");
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    // -- the outcome ---------------------------------------------------------------------

    /** ``value`` at ``scale`` (half-even, as the Python ledger's quantize), as Avro bytes. */
    static byte[] unscaled(BigDecimal value, int scale, int precision) {
        BigDecimal quantized = value.setScale(scale, RoundingMode.HALF_EVEN);
        if (quantized.signum() != 0 && quantized.precision() > precision) {
            throw new ArithmeticException(value + " does not fit decimal(" + precision + ","
                    + scale + ")");
        }
        return quantized.unscaledValue().toByteArray();
    }

    private static void wire(BinaryEncoder out, BigDecimal value) throws IOException {
        out.writeBytes(unscaled(value, WIRE_SCALE, 38));
    }

    private static void exact(BinaryEncoder out, BigDecimal value) throws IOException {
        out.writeBytes(unscaled(value, EXACT_SCALE, 76));
    }

    private static void optionalString(BinaryEncoder out, String value) throws IOException {
        if (value == null) {
            out.writeIndex(0);
        } else {
            out.writeIndex(1);
            out.writeString(value);
        }
    }

    /** The CycleOutcome record (schemas/cycle_outcome.avsc, field for field). */
    byte[] outcome(String session, Ledger.Decision d, long ts, String workerId,
                   List<String> eventIds) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(1024);
        bytes.writeBytes(outcome);
        BinaryEncoder out = EncoderFactory.get().directBinaryEncoder(bytes, null);
        Ledger.State state = d.state();
        try {
            out.writeString(session);
            out.writeLong(d.cycleId());
            out.writeEnum(d.committed() ? 0 : 1);
            optionalString(out, d.reason());
            wire(out, d.cash());
            wire(out, d.positionsValue());
            wire(out, d.total());
            wire(out, d.previousEquity());
            wire(out, d.expectedEquity());
            wire(out, d.delta());
            wire(out, d.epsilon());
            wire(out, state.realized);
            wire(out, state.fees);
            // positions: symbol, quantity, avg_entry_price, mark_price (optional)
            out.writeArrayStart();
            out.setItemCount(state.lots.size());
            for (Map.Entry<String, List<Ledger.Lot>> entry : state.lots.entrySet()) {
                out.startItem();
                BigDecimal quantity = Ledger.quantity(entry.getValue());
                BigDecimal cost = Ledger.cost(entry.getValue());
                out.writeString(entry.getKey());
                wire(out, quantity);
                wire(out, quantity.signum() == 0 ? BigDecimal.ZERO
                        : cost.divide(quantity, Ledger.MC));
                BigDecimal markPrice = state.marks.get(entry.getKey());
                if (markPrice == null) {
                    out.writeIndex(0);
                } else {
                    out.writeIndex(1);
                    wire(out, markPrice);
                }
            }
            out.writeArrayEnd();
            out.writeLong(ts);
            out.writeLong(state.version);
            out.writeIndex(1);
            exact(out, state.cash);  // state_cash
            int lots = 0;
            for (List<Ledger.Lot> held : state.lots.values()) {
                lots += held.size();
            }
            out.writeArrayStart();
            out.setItemCount(lots);
            for (Map.Entry<String, List<Ledger.Lot>> entry : state.lots.entrySet()) {
                for (Ledger.Lot lot : entry.getValue()) {
                    out.startItem();
                    out.writeString(entry.getKey());
                    wire(out, lot.quantity());
                    exact(out, lot.cost());
                }
            }
            out.writeArrayEnd();
            out.writeArrayStart();
            out.setItemCount(state.marks.size());
            for (Map.Entry<String, BigDecimal> entry : state.marks.entrySet()) {
                out.startItem();
                out.writeString(entry.getKey());
                wire(out, entry.getValue());
            }
            out.writeArrayEnd();
            optionalString(out, workerId);
            out.writeArrayStart();
            out.setItemCount(eventIds.size());
            for (String id : eventIds) {
                out.startItem();
                out.writeString(id);
            }
            out.writeArrayEnd();
            out.writeInt(eventIds.size());  // event_count
            out.writeIndex(0);  // event_digest: null
            out.writeArrayStart();  // read_through: none (the peer does not tell re-reads apart)
            out.setItemCount(0);
            out.writeArrayEnd();
            // transfers, residual, state_realized_pnl: null, as an older writer leaves them
            out.writeIndex(0);
            out.writeIndex(0);
            out.writeIndex(0);
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return bytes.toByteArray();
    }
}
