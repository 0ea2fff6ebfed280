import { randomBytes } from 'node:crypto'

/**
 * A random serial number as hex: 16 bytes with the top bit clear (DER INTEGERs are signed, and
 * RFC 5280 §4.1.2.2 wants a positive serial of at most 20 octets) and the next bit set, so the
 * encoding is always exactly 16 octets. That leaves 126 random bits, well above the 64 that the
 * CA/Browser Forum baseline requirements ask for.
 *
 * @example
 * randomSerialNumber() // '5f0c…' (32 hex digits)
 */
export function randomSerialNumber(): string {
  const bytes = randomBytes(16)
  bytes[0] = ((bytes[0] as number) & 0x7f) | 0x40
  return bytes.toString('hex')
}
