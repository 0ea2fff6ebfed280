import { createPrivateKey, createPublicKey, type KeyObject, type webcrypto as WebCrypto } from 'node:crypto'
import type { KeyAlgorithm } from './defaults.js'
import { UnsupportedKeyError } from './errors.js'
import { webcrypto } from './x509.js'

type CryptoKey = WebCrypto.CryptoKey
type CryptoKeyPair = WebCrypto.CryptoKeyPair

/** WebCrypto parameters for generating, importing and signing with one kind of key. */
interface AlgorithmParams {
  readonly generate: WebCrypto.EcKeyGenParams | WebCrypto.RsaHashedKeyGenParams
  readonly import: WebCrypto.EcKeyImportParams | WebCrypto.RsaHashedImportParams
  readonly sign: WebCrypto.EcdsaParams | WebCrypto.Algorithm
}

function ec(namedCurve: 'P-256' | 'P-384' | 'P-521', hash: string): AlgorithmParams {
  return {
    generate: { name: 'ECDSA', namedCurve },
    import: { name: 'ECDSA', namedCurve },
    sign: { name: 'ECDSA', hash } as WebCrypto.EcdsaParams,
  }
}

function rsa(modulusLength: number): AlgorithmParams {
  const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }
  return {
    generate: { ...alg, modulusLength, publicExponent: new Uint8Array([1, 0, 1]) },
    import: alg,
    sign: alg,
  }
}

const PARAMS: Record<KeyAlgorithm, AlgorithmParams> = {
  'ecdsa-p256': ec('P-256', 'SHA-256'),
  'ecdsa-p384': ec('P-384', 'SHA-384'),
  'ecdsa-p521': ec('P-521', 'SHA-512'),
  'rsa-2048': rsa(2048),
  'rsa-3072': rsa(3072),
  'rsa-4096': rsa(4096),
}

/** A fresh key pair, with the private key as PKCS#8 PEM ("BEGIN PRIVATE KEY"). */
export interface GeneratedKey {
  readonly keys: CryptoKeyPair
  readonly keyPem: string
  /** What the key signs with, when it is a CA key. */
  readonly signingAlgorithm: AlgorithmParams['sign']
}

/**
 * Generate a key pair with WebCrypto and export the private key as PKCS#8 PEM.
 *
 * @example
 * const { keys, keyPem } = await generateKey('ecdsa-p256')
 */
export async function generateKey(algorithm: KeyAlgorithm): Promise<GeneratedKey> {
  const params = PARAMS[algorithm]
  const keys = (await webcrypto.subtle.generateKey(params.generate, true, ['sign', 'verify'])) as CryptoKeyPair
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey))
  return { keys, keyPem: toPem('PRIVATE KEY', der), signingAlgorithm: params.sign }
}

/** A CA key loaded for signing. */
export interface SigningKey {
  readonly privateKey: CryptoKey
  readonly keyObject: KeyObject
  readonly algorithm: KeyAlgorithm
  readonly signingAlgorithm: AlgorithmParams['sign']
}

/**
 * Load a private key PEM for signing. PKCS#8, PKCS#1 ("RSA PRIVATE KEY") and SEC1
 * ("EC PRIVATE KEY") are accepted, so a CA made by the old `openssl genrsa` script keeps working.
 * Throws Node's crypto error for a key it cannot parse, or UnsupportedKeyError; callers wrap it
 * with the file or option name.
 *
 * @example
 * const ca = await importSigningKey(fs.readFileSync('certs/ca.key', 'utf8'))
 * ca.algorithm // 'ecdsa-p256'
 */
export async function importSigningKey(keyPem: string): Promise<SigningKey> {
  const keyObject = createPrivateKey(keyPem)
  const algorithm = keyAlgorithmOf(keyObject)
  const params = PARAMS[algorithm]
  const der = keyObject.export({ type: 'pkcs8', format: 'der' })
  const privateKey = await webcrypto.subtle.importKey('pkcs8', der, params.import, false, ['sign'])
  return { privateKey, keyObject, algorithm, signingAlgorithm: params.sign }
}

/**
 * The algorithm of a key (private or public), in this package's names. RSA sizes round up to
 * the next size we generate, so that a reissued key is never weaker than the old one.
 *
 * @throws {UnsupportedKeyError} IPC_CERTS_UNSUPPORTED_KEY: neither ECDSA (P-256, P-384, P-521) nor RSA.
 * @example
 * keyAlgorithmOf(new X509Certificate(pem).publicKey) // 'ecdsa-p256'
 */
export function keyAlgorithmOf(key: KeyObject): KeyAlgorithm {
  const details = key.asymmetricKeyDetails ?? {}
  if (key.asymmetricKeyType === 'ec') {
    switch (details.namedCurve) {
      case 'prime256v1':
        return 'ecdsa-p256'
      case 'secp384r1':
        return 'ecdsa-p384'
      case 'secp521r1':
        return 'ecdsa-p521'
    }
  }
  if (key.asymmetricKeyType === 'rsa') {
    const bits = details.modulusLength ?? 0
    return bits <= 2048 ? 'rsa-2048' : bits <= 3072 ? 'rsa-3072' : 'rsa-4096'
  }
  throw new UnsupportedKeyError(key.asymmetricKeyType ?? 'unknown', details.namedCurve)
}

/**
 * True when the private key belongs to the public key (compared by their DER SubjectPublicKeyInfo).
 *
 * @example
 * keyMatches(createPrivateKey(keyPem), new X509Certificate(certPem).publicKey) // true
 */
export function keyMatches(privateKey: KeyObject, publicKey: KeyObject): boolean {
  const a = createPublicKey(privateKey).export({ type: 'spki', format: 'der' })
  const b = publicKey.export({ type: 'spki', format: 'der' })
  return a.equals(b)
}

function toPem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? []
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`
}
