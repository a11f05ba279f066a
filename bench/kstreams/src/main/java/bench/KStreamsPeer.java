package bench;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.Stores;

/**
 * The Kafka Streams peer of `make bench`: the job as a JVM shop would write it.
 *
 * <pre>
 * java -cp ... bench.KStreamsPeer BOOTSTRAP APP_ID FILLS PNL CYCLES MARKS OUTCOMES STATE_DIR
 *     STARTED_FILE SCHEMAS_DIR
 * </pre>
 *
 * processing.guarantee=exactly_once_v2, one stream thread. The three co-partitioned input
 * topics (keyed by session_id) feed one processor with two persistent (RocksDB, changelogged)
 * key-value stores per session: "open" (the last decided cycle id and the open cycles, their
 * events by id so a duplicate counts once) and "committed" (the committed state). The marks
 * topic (keyed by symbol) fills a global store keyed by symbol + timestamp, so a marker
 * finds, per held symbol, the latest mark at or before its own timestamp. The rule is
 * CONTRACT §2 in BigDecimal (Ledger); a cycle is decided, in cycle-id order, once its marker
 * and all the events it announces are in (COUNT_MISMATCH when more arrive); MISSING_MARK and
 * STALE_MARK (older than 300 s) discard without valuing. Outcomes are the contract's
 * CycleOutcome in single-object Avro (Wire) on their own topic, so the bench checks them
 * exactly as it checks the Quix Streams peer's. Not implemented (the bench's workload has
 * none): cycle timeouts (INCOMPLETE), INVALID_EVENT and the dead-letter topic (a value that
 * does not decode stops the app), Schema Registry framing.
 */
public final class KStreamsPeer {
    static final long MAX_MARK_AGE_MS = 300_000;
    static final String WORKER_ID = "kstreams";
    /** One started file per process: the bench times the run from the first record. */
    static final AtomicBoolean STARTED = new AtomicBoolean();

    // -- marks: the global store ---------------------------------------------------------

    static Bytes markKey(String symbol, long ts) {
        byte[] name = symbol.getBytes(StandardCharsets.UTF_8);
        return Bytes.wrap(ByteBuffer.allocate(name.length + 9).put(name).put((byte) 0)
                .putLong(ts).array());
    }

    /** Keeps every mark, keyed by symbol, 0x00, big-endian timestamp (ts ≥ 0). */
    static final class MarksUpdater implements Processor<String, byte[], Void, Void> {
        private KeyValueStore<Bytes, byte[]> store;
        private Wire wire;
        private final Path schemas;

        MarksUpdater(Path schemas) {
            this.schemas = schemas;
        }

        @Override
        public void init(ProcessorContext<Void, Void> context) {
            store = context.getStateStore("marks");
            wire = new Wire(schemas);
        }

        @Override
        public void process(Record<String, byte[]> record) {
            Wire.Mark mark = wire.mark(record.value());
            store.put(markKey(mark.symbol(), mark.ts()),
                    mark.price().unscaledValue().toByteArray());
        }
    }

    // -- the open cycles of a session ----------------------------------------------------

    static final class Cycle {
        final LinkedHashMap<String, Wire.Fill> fills = new LinkedHashMap<>();
        final LinkedHashMap<String, Wire.Pnl> pnl = new LinkedHashMap<>();
        Wire.Marker marker;
    }

    static final class Open {
        long lastDecided = Ledger.NO_CYCLE;
        final TreeMap<Long, Cycle> cycles = new TreeMap<>();

        byte[] toBytes(String session) {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream(512);
            try (DataOutputStream out = new DataOutputStream(bytes)) {
                out.writeLong(lastDecided);
                out.writeInt(cycles.size());
                for (Map.Entry<Long, Cycle> e : cycles.entrySet()) {
                    Cycle c = e.getValue();
                    out.writeLong(e.getKey());
                    out.writeInt(c.fills.size());
                    for (Wire.Fill f : c.fills.values()) {
                        out.writeUTF(f.eventId());
                        out.writeUTF(f.symbol());
                        out.writeBoolean(f.buy());
                        Ledger.writeDecimal(out, f.quantity());
                        Ledger.writeDecimal(out, f.price());
                        Ledger.writeDecimal(out, f.fee());
                        out.writeLong(f.ts());
                    }
                    out.writeInt(c.pnl.size());
                    for (Wire.Pnl p : c.pnl.values()) {
                        out.writeUTF(p.eventId());
                        out.writeByte(p.kind());
                        Ledger.writeDecimal(out, p.amount());
                        out.writeLong(p.ts());
                    }
                    out.writeBoolean(c.marker != null);
                    if (c.marker != null) {
                        out.writeInt(c.marker.fillCount());
                        out.writeInt(c.marker.pnlCount());
                        out.writeLong(c.marker.ts());
                    }
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            return bytes.toByteArray();
        }

        static Open fromBytes(String session, byte[] value) {
            Open open = new Open();
            if (value == null) {
                return open;
            }
            try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(value))) {
                open.lastDecided = in.readLong();
                for (int n = in.readInt(); n > 0; n--) {
                    long cycleId = in.readLong();
                    Cycle c = new Cycle();
                    for (int i = in.readInt(); i > 0; i--) {
                        String id = in.readUTF();
                        c.fills.put(id, new Wire.Fill(id, session, cycleId, in.readUTF(),
                                in.readBoolean(), Ledger.readDecimal(in), Ledger.readDecimal(in),
                                Ledger.readDecimal(in), in.readLong()));
                    }
                    for (int i = in.readInt(); i > 0; i--) {
                        String id = in.readUTF();
                        c.pnl.put(id, new Wire.Pnl(id, session, cycleId, in.readByte(),
                                Ledger.readDecimal(in), in.readLong()));
                    }
                    if (in.readBoolean()) {
                        c.marker = new Wire.Marker(session, cycleId, in.readInt(), in.readInt(),
                                in.readLong());
                    }
                    open.cycles.put(cycleId, c);
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            return open;
        }
    }

    // -- the per-session processor -------------------------------------------------------

    static final class Sessions implements Processor<String, byte[], String, byte[]> {
        private final Path schemas;
        private final Path startedFile;
        private ProcessorContext<String, byte[]> context;
        private KeyValueStore<String, byte[]> open;
        private KeyValueStore<String, byte[]> committed;
        private KeyValueStore<Bytes, byte[]> marks;
        private Wire wire;
        private final String fills;
        private final String pnl;
        private boolean started;

        Sessions(Path schemas, Path startedFile, String fills, String pnl) {
            this.schemas = schemas;
            this.startedFile = startedFile;
            this.fills = fills;
            this.pnl = pnl;
        }

        @Override
        public void init(ProcessorContext<String, byte[]> context) {
            this.context = context;
            open = context.getStateStore("open");
            committed = context.getStateStore("committed");
            marks = context.getStateStore("marks");
            wire = new Wire(schemas);
        }

        @Override
        public void process(Record<String, byte[]> record) {
            if (!started) {
                started = true;
                if (STARTED.compareAndSet(false, true)) {
                    markStarted();
                }
            }
            String topic = context.recordMetadata().orElseThrow().topic();
            String session;
            long cycleId;
            Wire.Fill fill = null;
            Wire.Pnl report = null;
            Wire.Marker marker = null;
            if (topic.equals(fills)) {
                fill = wire.fill(record.value());
                session = fill.sessionId();
                cycleId = fill.cycleId();
            } else if (topic.equals(pnl)) {
                report = wire.pnl(record.value());
                session = report.sessionId();
                cycleId = report.cycleId();
            } else {
                marker = wire.marker(record.value());
                session = marker.sessionId();
                cycleId = marker.cycleId();
            }
            Open state = Open.fromBytes(session, open.get(session));
            if (state.lastDecided != Ledger.NO_CYCLE && cycleId <= state.lastDecided) {
                return;  // a redelivery or a late event of a decided cycle
            }
            Cycle cycle = state.cycles.computeIfAbsent(cycleId, id -> new Cycle());
            if (fill != null) {
                cycle.fills.putIfAbsent(fill.eventId(), fill);
            } else if (report != null) {
                cycle.pnl.putIfAbsent(report.eventId(), report);
            } else if (cycle.marker == null) {
                cycle.marker = marker;
            }
            while (true) {
                Map.Entry<Long, Cycle> next = null;
                for (Map.Entry<Long, Cycle> e : state.cycles.entrySet()) {
                    if (e.getValue().marker != null) {
                        next = e;
                        break;
                    }
                }
                if (next == null) {
                    break;
                }
                Cycle c = next.getValue();
                String reason;
                if (c.fills.size() > c.marker.fillCount() || c.pnl.size() > c.marker.pnlCount()) {
                    reason = "COUNT_MISMATCH";
                } else if (c.fills.size() == c.marker.fillCount()
                        && c.pnl.size() == c.marker.pnlCount()) {
                    reason = null;
                } else {
                    break;  // waiting for the rest of the cycle
                }
                long decided = next.getKey();
                context.forward(new Record<>(session, decide(session, decided, c, reason),
                        record.timestamp()));
                state.cycles.headMap(decided, true).clear();
                state.lastDecided = decided;
            }
            open.put(session, state.toBytes(session));
        }

        private byte[] decide(String session, long cycleId, Cycle c, String reason) {
            byte[] stored = committed.get(session);
            Ledger.State base;
            try {
                base = stored == null ? new Ledger.State()
                        : Ledger.readState(new DataInputStream(new ByteArrayInputStream(stored)));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            long at = c.marker.ts();
            Ledger.Decision decision;
            if (reason == null) {
                Ledger.Staged staged = new Ledger.Staged(base);
                for (Wire.Fill f : c.fills.values()) {
                    staged.fill(f.symbol(), f.buy(), f.quantity(), f.price(), f.fee());
                }
                for (Wire.Pnl p : c.pnl.values()) {
                    staged.pnl(p.kind(), p.amount());
                }
                Map<String, BigDecimal> found = new TreeMap<>();
                for (String symbol : staged.held()) {
                    KeyValue<Bytes, byte[]> latest = latestMark(symbol, at);
                    if (latest == null) {
                        reason = "MISSING_MARK";
                        break;
                    }
                    long ts = ByteBuffer.wrap(latest.key.get()).getLong(latest.key.get().length - 8);
                    if (at - ts > MAX_MARK_AGE_MS) {
                        reason = "STALE_MARK";
                        break;
                    }
                    found.put(symbol, new BigDecimal(new BigInteger(latest.value),
                            Wire.WIRE_SCALE));
                }
                decision = reason == null ? Ledger.decide(staged, found, cycleId)
                        : Ledger.discard(base, reason, cycleId);
            } else {
                decision = Ledger.discard(base, reason, cycleId);
            }
            if (decision.committed()) {
                ByteArrayOutputStream bytes = new ByteArrayOutputStream(512);
                try (DataOutputStream out = new DataOutputStream(bytes)) {
                    Ledger.writeState(out, decision.state());
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
                committed.put(session, bytes.toByteArray());
            }
            List<String> eventIds = new ArrayList<>(c.fills.keySet());
            eventIds.addAll(c.pnl.keySet());
            return wire.outcome(session, decision, at, WORKER_ID, eventIds);
        }

        private void markStarted() {
            try {
                Files.writeString(startedFile, Double.toString(System.currentTimeMillis()
                        / 1000.0));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            System.err.println("kstreams: first record; marks in the global store: "
                    + marks.approximateNumEntries());
        }

        /** The latest mark of ``symbol`` at or before ``at``, or null. */
        private KeyValue<Bytes, byte[]> latestMark(String symbol, long at) {
            try (KeyValueIterator<Bytes, byte[]> it =
                         marks.reverseRange(markKey(symbol, 0), markKey(symbol, at))) {
                return it.hasNext() ? it.next() : null;
            }
        }
    }

    public static void main(String[] args) throws InterruptedException {
        if (args.length != 10) {
            System.err.println("usage: KStreamsPeer BOOTSTRAP APP_ID FILLS PNL CYCLES MARKS "
                    + "OUTCOMES STATE_DIR STARTED_FILE SCHEMAS_DIR");
            System.exit(2);
        }
        String bootstrap = args[0];
        String appId = args[1];
        String fills = args[2];
        String pnl = args[3];
        String cycles = args[4];
        String marksTopic = args[5];
        String outcomes = args[6];
        String stateDir = args[7];
        Path started = Path.of(args[8]);
        Path schemas = Path.of(args[9]);

        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);

        StreamsBuilder builder = new StreamsBuilder();
        builder.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore("open"),
                Serdes.String(), Serdes.ByteArray()));
        builder.addStateStore(Stores.keyValueStoreBuilder(
                Stores.persistentKeyValueStore("committed"), Serdes.String(), Serdes.ByteArray()));
        builder.addGlobalStore(
                Stores.keyValueStoreBuilder(Stores.inMemoryKeyValueStore("marks"), Serdes.Bytes(),
                        Serdes.ByteArray()).withLoggingDisabled(),
                marksTopic, Consumed.with(Serdes.String(), Serdes.ByteArray()),
                () -> new MarksUpdater(schemas));
        builder.stream(List.of(fills, pnl, cycles), Consumed.with(Serdes.String(),
                        Serdes.ByteArray()))
                .process(() -> new Sessions(schemas, started, fills, pnl), "open", "committed")
                .to(outcomes, Produced.with(Serdes.String(), Serdes.ByteArray()));

        KafkaStreams streams = new KafkaStreams(builder.build(), props);
        CountDownLatch done = new CountDownLatch(1);
        int[] exitCode = {0};
        streams.setUncaughtExceptionHandler(exception -> {
            System.err.println("kstreams: stream thread failed: " + exception);
            exception.printStackTrace();
            exitCode[0] = 1;
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.setStateListener((now, before) -> {
            if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) {
                done.countDown();
            }
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close(Duration.ofSeconds(30));
            done.countDown();
        }));
        streams.start();
        done.await();
        streams.close(Duration.ofSeconds(30));
        System.exit(exitCode[0]);
    }
}
