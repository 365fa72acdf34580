import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { UsageReport } from '../api/resources.js';

const WIDTH = 900;
const HEIGHT = 260;

/**
 * The API counts UTC hours and days: drawn in the browser's time zone, a day's bar would sit at (and be
 * named by) the evening before west of Greenwich, so the axis and the legend show UTC, and say so.
 */
const inUtc = (seconds: number) => uPlot.tzDate(new Date(seconds * 1000), 'Etc/UTC');
const PERIOD_LABEL = { hour: '{YYYY}-{MM}-{DD} {HH}:{mm} UTC', day: '{YYYY}-{MM}-{DD} UTC' } as const;

/**
 * Requests per period drawn with uPlot: served (2xx/3xx) as bars, refused or failed (4xx, 5xx) as
 * lines, so a quota or an outage stands out. The numbers are in the tables beside it too.
 */
export function UsageChart({
  points,
  granularity,
}: {
  points: UsageReport['data'];
  granularity: 'hour' | 'day';
}) {
  const holder = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = holder.current;
    if (!element) return;
    const data: uPlot.AlignedData = [
      points.map((point) => Date.parse(point.start) / 1000),
      points.map((point) => point.by_status_class['2xx'] + point.by_status_class['3xx']),
      points.map((point) => point.by_status_class['4xx']),
      points.map((point) => point.by_status_class['5xx']),
    ];
    const bars = uPlot.paths.bars?.({ size: [0.7, 60] });
    const plot = new uPlot(
      {
        width: Math.min(WIDTH, element.clientWidth || WIDTH),
        height: HEIGHT,
        tzDate: inUtc,
        scales: { x: { time: true } },
        axes: [{ space: granularity === 'hour' ? 60 : 80, label: 'UTC' }, { label: 'requests' }],
        series: [
          { value: PERIOD_LABEL[granularity] },
          {
            label: '2xx/3xx',
            stroke: '#2e7d32',
            fill: 'rgba(46,125,50,0.35)',
            ...(bars ? { paths: bars } : {}),
          },
          { label: '4xx', stroke: '#b54708', width: 2 },
          { label: '5xx', stroke: '#c62828', width: 2 },
        ],
      },
      data,
      element,
    );
    return () => plot.destroy();
  }, [points, granularity]);
  return (
    <div class="chart" id="usage-chart" data-points={points.length}>
      <div ref={holder} />
    </div>
  );
}
