// Reads an interval log with HdrHistogram's own HistogramLogReader and prints, for one tag, the merged
// intervals as recorded and as HdrHistogram corrects them for coordinated omission
// (copyCorrectedForCoordinatedOmission of each interval, then added), one line each:
//   raw count=<n> p50=<v> p90=<v> p99=<v> max=<v>
//   corrected count=<n> p50=<v> p90=<v> p99=<v> max=<v>
// (HistogramLogProcessor's -correctLogWithKnownCoordinatedOmission fails on tagged logs in 2.1.11.)
// Usage: java -cp hdrhistogram.jar:<dir> HlogCorrectProgram <log.hlog> <tag> <expected interval>
import java.io.FileNotFoundException;

import org.HdrHistogram.EncodableHistogram;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.HistogramLogReader;

public final class HlogCorrectProgram {
    private static String figures(String label, Histogram h) {
        return label + " count=" + h.getTotalCount() + " p50=" + h.getValueAtPercentile(50.0) + " p90="
                + h.getValueAtPercentile(90.0) + " p99=" + h.getValueAtPercentile(99.0) + " max=" + h.getMaxValue();
    }

    public static void main(String[] args) throws FileNotFoundException {
        if (args.length != 3) {
            System.err.println("usage: HlogCorrectProgram <log.hlog> <tag> <expected interval>");
            System.exit(2);
        }
        final long interval = Long.parseLong(args[2]);
        final HistogramLogReader reader = new HistogramLogReader(args[0]);
        Histogram raw = null;
        Histogram corrected = null;
        EncodableHistogram e;
        while ((e = reader.nextIntervalHistogram()) != null) {
            if (!(e instanceof Histogram) || !args[1].equals(e.getTag())) continue;
            final Histogram h = (Histogram) e;
            if (raw == null) {
                raw = new Histogram(h.getLowestDiscernibleValue(), h.getHighestTrackableValue(),
                        h.getNumberOfSignificantValueDigits());
                corrected = new Histogram(h.getLowestDiscernibleValue(), h.getHighestTrackableValue(),
                        h.getNumberOfSignificantValueDigits());
            }
            raw.add(h);
            corrected.add(h.copyCorrectedForCoordinatedOmission(interval));
        }
        if (raw == null) {
            System.err.println("no interval tagged '" + args[1] + "'");
            System.exit(1);
        }
        System.out.println(figures("raw", raw));
        System.out.println(figures("corrected", corrected));
    }
}
