import { z } from 'zod';

/** Fields of an instance that requests and commands share: its name, its labels, and a suspension's reason. */

const LABEL_KEY = /^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?\/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?$/;

const MAX_LABELS = 64;

export const labelsSchema = z
  .record(
    z
      .string()
      .max(253)
      .regex(LABEL_KEY, 'must be a label key: letters, digits, "-", "_", "." and an optional prefix/'),
    z.string().max(253),
  )
  .refine((labels) => Object.keys(labels).length <= MAX_LABELS, `at most ${MAX_LABELS} labels`)
  .meta({ id: 'Labels', description: 'Labels; a PATCH replaces the whole map ({} clears it).' });

/** Trimmed, 1 to 200 characters, no control characters. */
function plainText() {
  return z
    .string()
    .trim()
    .min(1, 'is required')
    .max(200)
    .refine((s) => !/\p{Cc}/u.test(s), 'must not contain control characters');
}

export const instanceNameSchema = plainText();

export const suspendReasonSchema = plainText();
