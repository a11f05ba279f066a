package bench;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.math.MathContext;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The CONTRACT §2 rule in BigDecimal, written from the contract and checked digit for digit
 * against the Python reference ledger (src/portfolio_tx/ledger) by the bench's correctness
 * check. Sums and products of scale-18 numbers are exact (BigDecimal's default); the one
 * rounding step, a partial close's share of a lot's cost, is done as the reference does it:
 * cost / held * closed with 100 significant digits (half-even), then rounded to scale 36.
 */
final class Ledger {
    static final MathContext MC = new MathContext(100, RoundingMode.HALF_EVEN);
    static final int COST_SCALE = 36;
    static final BigDecimal EPSILON_FLOOR = new BigDecimal("1.00");
    static final BigDecimal EPSILON_RATE = new BigDecimal("0.0001");
    static final long NO_CYCLE = Long.MIN_VALUE;

    /** An open lot: signed quantity (never zero) and its total cost (same sign). */
    record Lot(BigDecimal quantity, BigDecimal cost) {}

    /** A session's committed state (CONTRACT §2); ``lots`` only holds symbols with lots. */
    static final class State {
        BigDecimal cash = BigDecimal.ZERO;
        BigDecimal realized = BigDecimal.ZERO;
        BigDecimal fees = BigDecimal.ZERO;
        BigDecimal equity = BigDecimal.ZERO;
        TreeMap<String, List<Lot>> lots = new TreeMap<>();
        TreeMap<String, BigDecimal> marks = new TreeMap<>();
        long lastCycle = NO_CYCLE;
        long version;

        BigDecimal unrealized() {
            return Ledger.unrealized(lots, marks);
        }
    }

    /** The previous committed state plus what the cycle staged on top of it. */
    static final class Staged {
        final State base;
        BigDecimal cash;
        final TreeMap<String, List<Lot>> lots = new TreeMap<>();
        BigDecimal fees = BigDecimal.ZERO;
        BigDecimal transfers = BigDecimal.ZERO;
        BigDecimal funding = BigDecimal.ZERO;
        BigDecimal reportedRealized = BigDecimal.ZERO;
        BigDecimal ledgerRealized = BigDecimal.ZERO;

        Staged(State base) {
            this.base = base;
            this.cash = base.cash;
            for (Map.Entry<String, List<Lot>> e : base.lots.entrySet()) {
                lots.put(e.getKey(), new ArrayList<>(e.getValue()));
            }
        }

        /** BUY q @ p fee f: cash −= q·p + f; SELL: cash += q·p − f; lots move FIFO. */
        void fill(String symbol, boolean buy, BigDecimal quantity, BigDecimal price,
                  BigDecimal fee) {
            if (quantity.signum() <= 0 || price.signum() <= 0) {
                throw new IllegalArgumentException("fill " + symbol
                        + ": quantity and price must be positive");
            }
            BigDecimal signed = buy ? quantity : quantity.negate();
            List<Lot> held = lots.getOrDefault(symbol, List.of());
            List<Lot> kept = new ArrayList<>(held.size() + 1);
            ledgerRealized = ledgerRealized.add(applyFifo(held, signed, price, kept));
            if (kept.isEmpty()) {
                lots.remove(symbol);
            } else {
                lots.put(symbol, kept);
            }
            cash = cash.subtract(signed.multiply(price)).subtract(fee);
            fees = fees.add(fee);
        }

        /** kind 0 REALIZED: the claim validation checks; 1 FUNDING: cash and realized;
         * 2 TRANSFER: cash. */
        void pnl(int kind, BigDecimal amount) {
            switch (kind) {
                case 0 -> reportedRealized = reportedRealized.add(amount);
                case 1 -> {
                    cash = cash.add(amount);
                    funding = funding.add(amount);
                }
                case 2 -> {
                    cash = cash.add(amount);
                    transfers = transfers.add(amount);
                }
                default -> throw new IllegalArgumentException("unknown P&L kind " + kind);
            }
        }

        /** Symbols with open lots, sorted: each needs a mark to commit. */
        List<String> held() {
            return new ArrayList<>(lots.keySet());
        }
    }

    /**
     * A signed quantity change at ``price`` through one symbol's lots (FIFO): it first closes
     * opposite lots oldest first, realizing (p − c)·q for longs and (c − p)·q for shorts; any
     * remainder opens a lot at ``price`` (so one fill can flip a position). The lots after
     * the change go to ``kept``; returns the realized P&L.
     */
    static BigDecimal applyFifo(List<Lot> lots, BigDecimal signed, BigDecimal price,
                                List<Lot> kept) {
        if (signed.signum() == 0) {
            kept.addAll(lots);
            return BigDecimal.ZERO;
        }
        int direction = signed.signum();
        BigDecimal remaining = signed.abs();
        BigDecimal realized = BigDecimal.ZERO;
        int index = 0;
        while (index < lots.size() && remaining.signum() > 0
                && lots.get(index).quantity().signum() != direction) {
            Lot lot = lots.get(index);
            BigDecimal held = lot.quantity().abs();
            if (remaining.compareTo(held) >= 0) {
                realized = realized.add(price.multiply(lot.quantity()).subtract(lot.cost()));
                remaining = remaining.subtract(held);
            } else {
                BigDecimal closedCost = lot.cost().divide(held, MC).multiply(remaining, MC)
                        .setScale(COST_SCALE, RoundingMode.HALF_EVEN);
                BigDecimal closed = price.multiply(remaining);
                int lotSign = lot.quantity().signum();
                realized = realized.add(lotSign > 0 ? closed : closed.negate())
                        .subtract(closedCost);
                kept.add(new Lot(lotSign > 0 ? lot.quantity().subtract(remaining)
                        : lot.quantity().add(remaining), lot.cost().subtract(closedCost)));
                remaining = BigDecimal.ZERO;
            }
            index++;
        }
        kept.addAll(lots.subList(index, lots.size()));
        if (remaining.signum() > 0) {
            BigDecimal quantity = direction > 0 ? remaining : remaining.negate();
            kept.add(new Lot(quantity, quantity.multiply(price)));
        }
        return realized;
    }

    static BigDecimal quantity(List<Lot> lots) {
        BigDecimal total = BigDecimal.ZERO;
        for (Lot lot : lots) {
            total = total.add(lot.quantity());
        }
        return total;
    }

    static BigDecimal cost(List<Lot> lots) {
        BigDecimal total = BigDecimal.ZERO;
        for (Lot lot : lots) {
            total = total.add(lot.cost());
        }
        return total;
    }

    /** U = Σ over lots of qty · mark − cost; a symbol without a mark contributes nothing. */
    static BigDecimal unrealized(Map<String, List<Lot>> lots, Map<String, BigDecimal> marks) {
        BigDecimal total = BigDecimal.ZERO;
        for (Map.Entry<String, List<Lot>> e : lots.entrySet()) {
            BigDecimal mark = marks.get(e.getKey());
            if (mark != null) {
                total = total.add(quantity(e.getValue()).multiply(mark)
                        .subtract(cost(e.getValue())));
            }
        }
        return total;
    }

    static BigDecimal epsilonFor(BigDecimal previousEquity) {
        return EPSILON_FLOOR.max(EPSILON_RATE.multiply(previousEquity));
    }

    /** COMMIT or DISCARD and every figure behind it; ``state`` is the new state on COMMIT,
     * the previous one untouched on DISCARD. */
    record Decision(boolean committed, String reason, long cycleId, State state,
                    BigDecimal previousEquity, BigDecimal cash, BigDecimal positionsValue,
                    BigDecimal total, BigDecimal expectedEquity, BigDecimal delta,
                    BigDecimal epsilon) {}

    /** A DISCARD decided without valuing the cycle (missing or stale mark, counts...). */
    static Decision discard(State previous, String reason, long cycleId) {
        BigDecimal equity = previous.equity;
        return new Decision(false, reason, cycleId, previous, equity, previous.cash,
                equity.subtract(previous.cash), equity, equity, BigDecimal.ZERO,
                epsilonFor(equity));
    }

    /**
     * Validation at the marker (CONTRACT §2): T = cash′ + Σ qty′·m′;
     * X = previous_equity + transfers + funding + reported_realized − fees + (U′ − U_prev);
     * Δ = T − X; ε = max(1.00, 0.0001 · previous_equity); COMMIT iff |Δ| ≤ ε and every held
     * symbol has a mark (else MISSING_MARK).
     */
    static Decision decide(Staged staged, Map<String, BigDecimal> marks, long cycleId) {
        State base = staged.base;
        List<String> held = staged.held();
        for (String symbol : held) {
            if (marks.get(symbol) == null) {
                return discard(base, "MISSING_MARK", cycleId);
            }
        }
        BigDecimal equity = base.equity;
        BigDecimal tolerance = epsilonFor(equity);
        BigDecimal positionsValue = BigDecimal.ZERO;
        for (String symbol : held) {
            positionsValue = positionsValue.add(quantity(staged.lots.get(symbol))
                    .multiply(marks.get(symbol)));
        }
        BigDecimal total = staged.cash.add(positionsValue);
        BigDecimal unrealizedAfter = unrealized(staged.lots, marks);
        BigDecimal expected = equity.add(staged.transfers).add(staged.funding)
                .add(staged.reportedRealized).subtract(staged.fees)
                .add(unrealizedAfter.subtract(base.unrealized()));
        BigDecimal delta = total.subtract(expected);
        if (delta.abs().compareTo(tolerance) > 0) {
            return new Decision(false, "VALIDATION_FAILED", cycleId, base, equity, staged.cash,
                    positionsValue, total, expected, delta, tolerance);
        }
        State committed = new State();
        committed.cash = staged.cash;
        // As the reference ledger (ledger/validation.py) books it: the accepted report plus
        // funding; within ε of the lots' own figure, which is what validation just checked.
        committed.realized = base.realized.add(staged.reportedRealized).add(staged.funding);
        committed.fees = base.fees.add(staged.fees);
        committed.equity = total;
        committed.lots = staged.lots;
        for (String symbol : held) {
            committed.marks.put(symbol, marks.get(symbol));
        }
        committed.lastCycle = cycleId;
        committed.version = base.version + 1;
        return new Decision(true, null, cycleId, committed, equity, staged.cash, positionsValue,
                total, expected, delta, tolerance);
    }

    // -- the state store's value ---------------------------------------------------------

    static void writeDecimal(DataOutputStream out, BigDecimal value) throws IOException {
        byte[] unscaled = value.unscaledValue().toByteArray();
        out.writeInt(value.scale());
        out.writeShort(unscaled.length);
        out.write(unscaled);
    }

    static BigDecimal readDecimal(DataInputStream in) throws IOException {
        int scale = in.readInt();
        byte[] unscaled = new byte[in.readShort()];
        in.readFully(unscaled);
        return new BigDecimal(new BigInteger(unscaled), scale);
    }

    static void writeState(DataOutputStream out, State s) throws IOException {
        writeDecimal(out, s.cash);
        writeDecimal(out, s.realized);
        writeDecimal(out, s.fees);
        writeDecimal(out, s.equity);
        out.writeLong(s.lastCycle);
        out.writeLong(s.version);
        out.writeInt(s.lots.size());
        for (Map.Entry<String, List<Lot>> e : s.lots.entrySet()) {
            out.writeUTF(e.getKey());
            out.writeInt(e.getValue().size());
            for (Lot lot : e.getValue()) {
                writeDecimal(out, lot.quantity());
                writeDecimal(out, lot.cost());
            }
        }
        out.writeInt(s.marks.size());
        for (Map.Entry<String, BigDecimal> e : s.marks.entrySet()) {
            out.writeUTF(e.getKey());
            writeDecimal(out, e.getValue());
        }
    }

    static State readState(DataInputStream in) throws IOException {
        State s = new State();
        s.cash = readDecimal(in);
        s.realized = readDecimal(in);
        s.fees = readDecimal(in);
        s.equity = readDecimal(in);
        s.lastCycle = in.readLong();
        s.version = in.readLong();
        for (int n = in.readInt(); n > 0; n--) {
            String symbol = in.readUTF();
            int count = in.readInt();
            List<Lot> lots = new ArrayList<>(count);
            for (int i = 0; i < count; i++) {
                lots.add(new Lot(readDecimal(in), readDecimal(in)));
            }
            s.lots.put(symbol, lots);
        }
        for (int n = in.readInt(); n > 0; n--) {
            s.marks.put(in.readUTF(), readDecimal(in));
        }
        return s;
    }

    private Ledger() {}
}
