/**
 * EDL (CMX 3600) and FCPXML descriptions for `diff`: events and clips added,
 * removed, moved and changed, on edit lists written here as the formats
 * define them; both strategies decline to merge (the line merge runs).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MediaFormat } from '../../detect.ts';
import { bufferAccess } from '../../info/random-access.ts';
import { edlStrategy } from './edl.ts';
import { fcpxmlStrategy } from './fcpxml.ts';

const format = (id: string): MediaFormat => ({
  format: id,
  category: 'text',
  alreadyCompressed: false,
  mime: 'text/plain',
  detectedBy: 'extension',
});
const access = (text: string) => bufferAccess(Buffer.from(text));

interface Event {
  readonly reel: string;
  readonly srcIn: string;
  readonly srcOut: string;
  readonly name: string;
}

/** A CMX 3600 EDL: events cut back to back from 01:00:00:00 (5 s each at 25 fps). */
function edl(title: string, events: readonly Event[]): string {
  const lines = [`TITLE: ${title}`, 'FCM: NON-DROP FRAME', ''];
  events.forEach((event, i) => {
    const recIn = `01:00:${String(i * 5).padStart(2, '0')}:00`;
    const recOut = `01:00:${String(i * 5 + 5).padStart(2, '0')}:00`;
    lines.push(
      `${String(i + 1).padStart(3, '0')}  ${event.reel.padEnd(8)} V     C        ${event.srcIn} ${event.srcOut} ${recIn} ${recOut}`,
      `* FROM CLIP NAME: ${event.name}`,
      '',
    );
  });
  return lines.join('\n');
}

test('EDL: events added, removed, moved and changed; the merge declines', async () => {
  const a = { reel: 'TAPE01', srcIn: '10:00:00:00', srcOut: '10:00:05:00', name: 'a.mov' };
  const b = { reel: 'TAPE02', srcIn: '11:00:00:00', srcOut: '11:00:05:00', name: 'b.mov' };
  const c = { reel: 'TAPE03', srcIn: '12:00:00:00', srcOut: '12:00:05:00', name: 'c.mov' };
  const d = { reel: 'TAPE04', srcIn: '13:00:00:00', srcOut: '13:00:05:00', name: 'd.mov' };
  const before = edl('Reel 1', [a, b, c]);
  const after = edl('Reel 1 v2', [a, d, { ...c, name: 'c_graded.mov' }]);
  const lines = await edlStrategy.describe!(access(before), access(after), format('edl'));
  assert.deepEqual(lines, [
    "title changed: 'Reel 1' → 'Reel 1 v2'",
    'event 002 (TAPE02 V 11:00:00:00-11:00:05:00) removed',
    'event 002 (TAPE04 V 13:00:00:00-13:00:05:00) added at 01:00:05:00-01:00:10:00',
    'event 003 (TAPE03 V 12:00:00:00-12:00:05:00) changed',
  ]);
  // Removing the first event moves the others (their record times), renumbered.
  assert.deepEqual(
    await edlStrategy.describe!(access(before), access(edl('Reel 1', [b, c])), format('edl')),
    [
      'event 001 (TAPE01 V 10:00:00:00-10:00:05:00) removed',
      'event 001 (TAPE02 V 11:00:00:00-11:00:05:00) moved: 01:00:05:00-01:00:10:00 → 01:00:00:00-01:00:05:00',
      'event 002 (TAPE03 V 12:00:00:00-12:00:05:00) moved: 01:00:10:00-01:00:15:00 → 01:00:05:00-01:00:10:00',
    ],
  );
  assert.deepEqual(
    await edlStrategy.describe!(access(before), access('not an edl'), format('edl')),
    [],
  );
  const merged = await edlStrategy.merge({
    path: 'cut.edl',
    format: format('edl'),
    base: access(before),
    ours: access(after),
    theirs: access(before),
  });
  assert.ok('declined' in merged);
});

interface Clip {
  readonly name: string;
  readonly ref: string;
  readonly offset: number;
  readonly start: number;
  readonly duration: number;
}

function fcpxml(clips: readonly Clip[]): string {
  const spine = clips
    .map(
      (clip) =>
        `                        <asset-clip ref="${clip.ref}" offset="${clip.offset}s" name="${clip.name}" start="${clip.start}s" duration="${clip.duration}s" tcFormat="NDF"/>`,
    )
    .join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE fcpxml>
<fcpxml version="1.10">
    <resources>
        <format id="r1" name="FFVideoFormat1080p25" frameDuration="1/25s" width="1920" height="1080"/>
        <asset id="r2" name="Interview" start="0s" duration="60s" hasVideo="1" format="r1"><media-rep kind="original-media" src="file:///media/interview.mov"/></asset>
        <asset id="r3" name="Broll" start="0s" duration="60s" hasVideo="1" format="r1"><media-rep kind="original-media" src="file:///media/broll.mov"/></asset>
    </resources>
    <library>
        <event name="Day 1">
            <project name="Cut">
                <sequence format="r1" duration="30s" tcStart="0s" tcFormat="NDF">
                    <spine>
${spine}
                        <gap name="Gap" offset="30s" start="0s" duration="2s">
                            <title ref="r9" offset="0s" name="Lower third" start="0s" duration="2s"/>
                        </gap>
                    </spine>
                </sequence>
            </project>
        </event>
    </library>
</fcpxml>
`;
}

test('FCPXML: clips added, removed, moved and changed; the merge declines', async () => {
  const interview = { name: 'Interview', ref: 'r2', offset: 0, start: 0, duration: 10 };
  const broll = { name: 'Broll', ref: 'r3', offset: 10, start: 5, duration: 10 };
  const broll2 = { name: 'Broll 2', ref: 'r3', offset: 20, start: 30, duration: 10 };
  const before = fcpxml([interview, broll, broll2]);
  const after = fcpxml([
    { ...interview, duration: 8 },
    { ...broll2, offset: 8 },
    { name: 'Interview 2', ref: 'r2', offset: 18, start: 40, duration: 12 },
  ]);
  const lines = await fcpxmlStrategy.describe!(access(before), access(after), format('fcpxml'));
  assert.deepEqual(lines, [
    "asset-clip 'Broll' removed",
    "asset-clip 'Interview' changed: duration 10s → 8s",
    "asset-clip 'Broll 2' moved: offset 20s → 8s",
    "asset-clip 'Interview 2' added",
  ]);
  assert.deepEqual(
    await fcpxmlStrategy.describe!(access(before), access(before), format('fcpxml')),
    [],
  );
  assert.deepEqual(
    await fcpxmlStrategy.describe!(
      access(before),
      access('<fcpxml><spine><clip>'),
      format('fcpxml'),
    ),
    [],
  );
  const merged = await fcpxmlStrategy.merge({
    path: 'cut.fcpxml',
    format: format('fcpxml'),
    base: access(before),
    ours: access(after),
    theirs: access(before),
  });
  assert.ok('declined' in merged);
});
