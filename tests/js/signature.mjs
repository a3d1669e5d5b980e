// Timestep's row signatures in TypeScript, as docs/security.md specifies them: with
// TIMESTEP_STATE_KEY set, a JS writer signs the rows it stores and checks the rows it resumes,
// so Python and TypeScript processes trust exactly the same rows.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

const LABEL = 'timestep-run-state-v1';

function keyId(key) {
  return createHash('sha256').update(`timestep key id\n${key}`).digest('hex').slice(0, 12);
}

function message(row) {
  const fields = [row.agentName, row.sessionId, row.sdk, row.schemaVersion, row.state, row.portableState];
  const parts = [Buffer.from(LABEL)];
  for (const value of fields) {
    if (value === null || value === undefined) {
      parts.push(Buffer.from('\n~'));
    } else {
      const bytes = Buffer.from(value, 'utf8');
      parts.push(Buffer.from(`\n${bytes.length}:`), bytes);
    }
  }
  return Buffer.concat(parts);
}

/** The signature for `row` with the process's key, or null when no key is set. */
export function signRow(row, key = process.env.TIMESTEP_STATE_KEY) {
  if (!key) {
    return null;
  }
  return `v1:${keyId(key)}:${createHmac('sha256', key).update(message(row)).digest('hex')}`;
}

/** Throws unless `row.signature` matches (only when a key is set, as in Python). */
export function verifyRow(row, key = process.env.TIMESTEP_STATE_KEY) {
  if (!key) {
    return;
  }
  const expected = signRow(row, key);
  const given = row.signature ?? '';
  if (given.length !== expected.length || !timingSafeEqual(Buffer.from(given), Buffer.from(expected))) {
    throw new Error(
      `StateIntegrityError: the stored run ${row.sessionId} is unsigned or was changed outside Timestep`,
    );
  }
}
