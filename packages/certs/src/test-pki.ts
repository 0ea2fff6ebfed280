import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { createCa } from './ca.js'
import { certPaths, prepareCertDir } from './cert-dir.js'
import { writeCertificate } from './cert-store.js'
import { issueCertificate, type CertificatePem } from './issue.js'

/** One certificate of a test PKI: PEM text and the files it was written to. */
export interface TestPkiEntry extends CertificatePem {
  /** Absolute path of the `.crt` file (0644). */
  readonly certPath: string
  /** Absolute path of the `.key` file (0600). */
  readonly keyPath: string
}

/**
 * A complete PKI for tests of mutual TLS, written to one folder:
 *
 * | field           | files                               | what                                                          |
 * |-----------------|-------------------------------------|---------------------------------------------------------------|
 * | `ca`            | ca.crt, ca.key                      | the trusted CA                                                |
 * | `server`        | server.crt, server.key              | CN=localhost; DNS localhost, IP 127.0.0.1 and ::1; serverAuth |
 * | `client`        | client.crt, client.key              | CN=web-server; DNS web-server, URI urn:naaccord:client:web-server; clientAuth |
 * | `expiredServer` | expired-server.crt/.key             | like `server`, signed by `ca`, expired a day ago              |
 * | `expiredClient` | expired-client.crt/.key             | like `client`, signed by `ca`, expired a day ago              |
 * | `otherCa`       | other-ca.crt, other-ca.key          | an unrelated CA (CN=naaccord-ipc other CA)                    |
 * | `otherServer`   | other-server.crt/.key               | like `server`, signed by `otherCa`                            |
 * | `otherClient`   | other-client.crt/.key               | like `client`, signed by `otherCa`                            |
 *
 * Servers name `localhost` (use `servername: 'localhost'`); names are configurable.
 */
export interface TestPki {
  /** The folder holding every file (mode 0700). */
  readonly dir: string
  readonly ca: TestPkiEntry
  readonly server: TestPkiEntry
  readonly client: TestPkiEntry
  readonly expiredServer: TestPkiEntry
  readonly expiredClient: TestPkiEntry
  readonly otherCa: TestPkiEntry
  readonly otherServer: TestPkiEntry
  readonly otherClient: TestPkiEntry
  /** Remove `dir` when createTestPki made it; a no-op when the caller gave `dir`. */
  cleanup(): Promise<void>
}

export interface TestPkiOptions {
  /** Write into this folder (created 0700 when missing; must not be group/world-writable). Default: a new `fs.mkdtemp` folder under the OS temp dir. */
  dir?: string
  /** Names of the server certificates. Default `['localhost']`. */
  serverNames?: readonly string[]
  /** Name of the client certificates. Default `'web-server'`. */
  clientName?: string
  /** Lifetime of the valid leaf certificates, in days. Default 1. */
  days?: number
}

const DAY_MS = 24 * 60 * 60 * 1000

/**
 * Make a CA, a server and a client certificate, plus the usual bad cases (expired ones, and ones
 * from an unrelated CA), and write them all to a folder. ECDSA P-256 keys, so it takes a few
 * milliseconds. Meant for tests of TLS servers and clients; see `TestPki` for what you get.
 *
 * @example
 * const pki = await createTestPki()
 * afterEach(() => pki.cleanup())
 * const server = tls.createServer({ key: pki.server.keyPem, cert: pki.server.certPem, ca: pki.ca.certPem, requestCert: true, rejectUnauthorized: true })
 * tls.connect({ path: sock, servername: 'localhost', ca: pki.ca.certPem, key: pki.client.keyPem, cert: pki.client.certPem })
 */
export async function createTestPki(options: TestPkiOptions = {}): Promise<TestPki> {
  const created = options.dir === undefined
  const dir = created ? await mkdtemp(path.join(os.tmpdir(), 'naaccord-pki-')) : await prepareCertDir(options.dir as string, { create: true })
  try {
    const serverNames = options.serverNames ?? ['localhost']
    const clientNames = [options.clientName ?? 'web-server']
    const days = options.days ?? 1
    const expired = { notBefore: new Date(Date.now() - 2 * DAY_MS), notAfter: new Date(Date.now() - DAY_MS) }

    // The CAs predate the expired leaves and outlive the valid ones.
    const caValidity = { notBefore: new Date(Date.now() - 3 * DAY_MS), days: days + 1 }
    const [ca, otherCa] = await Promise.all([createCa(caValidity), createCa({ ...caValidity, commonName: 'naaccord-ipc other CA' })])
    const [server, client, expiredServer, expiredClient, otherServer, otherClient] = await Promise.all([
      issueCertificate({ ca, kind: 'server', names: serverNames, days }),
      issueCertificate({ ca, kind: 'client', names: clientNames, days }),
      issueCertificate({ ca, kind: 'server', names: serverNames, ...expired }),
      issueCertificate({ ca, kind: 'client', names: clientNames, ...expired }),
      issueCertificate({ ca: otherCa, kind: 'server', names: serverNames, days }),
      issueCertificate({ ca: otherCa, kind: 'client', names: clientNames, days }),
    ])
    const write = async (base: string, pem: CertificatePem): Promise<TestPkiEntry> => {
      const paths = certPaths(dir, base)
      await writeCertificate(paths, pem)
      return { ...pem, ...paths }
    }
    return {
      dir,
      ca: await write('ca', ca),
      server: await write('server', server),
      client: await write('client', client),
      expiredServer: await write('expired-server', expiredServer),
      expiredClient: await write('expired-client', expiredClient),
      otherCa: await write('other-ca', otherCa),
      otherServer: await write('other-server', otherServer),
      otherClient: await write('other-client', otherClient),
      cleanup: created ? () => rm(dir, { recursive: true, force: true }) : async () => {},
    }
  } catch (err) {
    if (created) await rm(dir, { recursive: true, force: true })
    throw err
  }
}
