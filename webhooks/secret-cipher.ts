import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

const SEALED = 'aes256gcm:';

/**
 * How webhook secrets are kept in the database. They cannot be hashed (each delivery is signed with the secret
 * itself), so with CTRLPLANE_WEBHOOK_SECRET_KEY they are encrypted (AES-256-GCM, a random nonce each): a copy of
 * the database alone does not sign deliveries. Without a key they are stored as given. A stored value says how
 * it was stored, so secrets saved before a key was set still open.
 */
export class WebhookSecretCipher {
  private readonly key: Buffer | undefined;

  constructor(keyMaterial: string | undefined) {
    this.key = keyMaterial ? createHash('sha256').update(keyMaterial).digest() : undefined;
  }

  seal(secret: string): string {
    if (!this.key) return secret;
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce);
    const sealed = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
    return `${SEALED}${Buffer.concat([nonce, cipher.getAuthTag(), sealed]).toString('base64')}`;
  }

  open(stored: string): string {
    if (!stored.startsWith(SEALED)) return stored;
    if (!this.key) {
      throw new Error('a webhook secret is encrypted but CTRLPLANE_WEBHOOK_SECRET_KEY is not set');
    }
    const raw = Buffer.from(stored.slice(SEALED.length), 'base64');
    const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  }
}
