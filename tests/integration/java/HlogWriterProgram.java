// Writes an HdrHistogram interval log with HdrHistogram's own HistogramLogWriter, for
// hlog_java_test: seeded lognormal-ish nanosecond latencies, several tags (one of them untagged,
// one with another histogram layout), an explicit BaseTime. Prints, per tag, what HdrHistogram
// itself computes over the merged intervals, one line per tag:
//   tag=<tag> count=<n> p50=<v> p90=<v> p99=<v> p999=<v> max=<v>
// Usage: java -cp hdrhistogram.jar:<dir> HlogWriterProgram <output.hlog> <seed>
import java.io.FileNotFoundException;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

import org.HdrHistogram.Histogram;
import org.HdrHistogram.HistogramLogWriter;

public final class HlogWriterProgram {
    private static final long START_MS = 1700000000000L;  // 2023-11-14T22:13:20Z
    private static final int INTERVALS = 6;

    private static Histogram newHistogram(String tag) {
        // "wire" uses another layout (coarser, microsecond-discernible) to exercise the decoder.
        return tag.equals("wire") ? new Histogram(1000, 100_000_000_000L, 2) : new Histogram(1, 3_600_000_000_000L, 3);
    }

    public static void main(String[] args) throws FileNotFoundException {
        if (args.length != 2) {
            System.err.println("usage: HlogWriterProgram <output.hlog> <seed>");
            System.exit(2);
        }
        final Random rng = new Random(Long.parseLong(args[1]));
        final String[] tags = {"rx", "wire", ""};
        final double[] medianNs = {20_000.0, 350_000.0, 1_500.0};
        final HistogramLogWriter writer = new HistogramLogWriter(args[0]);
        writer.outputComment("[Logged with HlogWriterProgram]");
        writer.outputLogFormatVersion();
        writer.outputStartTime(START_MS);
        writer.setBaseTime(START_MS);
        writer.outputBaseTime(START_MS);
        writer.outputLegend();

        final Map<String, Histogram> totals = new TreeMap<>();
        for (int interval = 0; interval < INTERVALS; interval++) {
            for (int t = 0; t < tags.length; t++) {
                final Histogram h = newHistogram(tags[t]);
                final int n = 2_000 + rng.nextInt(40_000);
                for (int i = 0; i < n; i++) {
                    final double v = Math.exp(Math.log(medianNs[t]) + 1.1 * rng.nextGaussian());
                    h.recordValue(Math.min((long) v, h.getHighestTrackableValue()));
                }
                if (interval == 3 && t == 0) h.recordValue(2_500_000_000L);  // one 2.5 s outlier
                h.setStartTimeStamp(START_MS + interval * 1000L + 250L);
                h.setEndTimeStamp(START_MS + (interval + 1) * 1000L + 250L);
                h.setTag(tags[t].isEmpty() ? null : tags[t]);
                writer.outputIntervalHistogram(h);
                totals.computeIfAbsent(tags[t], HlogWriterProgram::newHistogram).add(h);
            }
        }
        writer.close();
        for (Map.Entry<String, Histogram> e : totals.entrySet()) {
            final Histogram h = e.getValue();
            System.out.printf("tag=%s count=%d p50=%d p90=%d p99=%d p999=%d max=%d%n", e.getKey(), h.getTotalCount(),
                    h.getValueAtPercentile(50.0), h.getValueAtPercentile(90.0), h.getValueAtPercentile(99.0),
                    h.getValueAtPercentile(99.9), h.getMaxValue());
        }
    }
}
