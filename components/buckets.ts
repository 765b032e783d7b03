// The replica store for Litestream (and Postgres dumps): an S3 bucket configured for backups, and
// the credentials the replicator uses.
// - AWS: the bucket with versioning, SSE-S3, a public access block and a lifecycle rule under the
//   stack's prefix; an IAM user whose policy reaches only `<prefix>/*` (research/litestream.md A3).
// - S3-compatible (Hetzner, R2, B2, MinIO): an explicit aws.Provider with the endpoint, path-style
//   URLs and the AWS-only checks skipped; credentials come from config secrets (no IAM there).
//   Versioning and the lifecycle rule are set; SSE and the public access block are AWS APIs that
//   several of these stores answer with NotImplemented, so they are left to the provider's defaults.
// Data is never deleted by an ordinary change or destroy: the bucket is `retainOnDelete`, never
// `forceDestroy`, and `protect`ed on production stacks.
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";

export interface BackupBucketArgs {
  /** Bucket name. */
  readonly bucket: string;
  /** Create and configure the bucket; false = it exists and is managed elsewhere. */
  readonly createBucket: boolean;
  readonly region: string;
  /** S3-compatible endpoint; absent = AWS. */
  readonly endpoint?: string;
  readonly forcePathStyle?: boolean;
  /** The stack's prefix inside the bucket, e.g. `demo/production` (no slashes at either end). */
  readonly prefix: string;
  /** Static credentials (secrets from config); required with an endpoint, optional on AWS. */
  readonly credentials?: { readonly accessKeyId: pulumi.Input<string>; readonly secretAccessKey: pulumi.Input<string> };
  /** Days a replaced or deleted object version is kept (default 30). */
  readonly noncurrentDays?: number;
  /** `protect` the bucket (production). */
  readonly protect: boolean;
}

/** The IAM policy document that limits a key to one bucket prefix (pure; tested directly). */
export function prefixPolicy(bucket: string, prefix: string): { Version: string; Statement: Array<Record<string, unknown>> } {
  const p = prefix.replace(/^\/+|\/+$/g, "");
  return {
    Version: "2012-10-17",
    Statement: [
      { Sid: "ListOwnPrefix", Effect: "Allow", Action: "s3:ListBucket", Resource: `arn:aws:s3:::${bucket}`, Condition: { StringLike: { "s3:prefix": [`${p}/*`, p] } } },
      {
        Sid: "ObjectsUnderPrefix",
        Effect: "Allow",
        Action: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
        Resource: `arn:aws:s3:::${bucket}/${p}/*`,
      },
    ],
  };
}

export class BackupBucket extends pulumi.ComponentResource {
  public readonly bucketName: pulumi.Output<string>;
  public readonly region: string;
  public readonly endpoint?: string;
  public readonly forcePathStyle: boolean;
  /** Credentials for the replicator (secret). */
  public readonly accessKeyId: pulumi.Output<string>;
  public readonly secretAccessKey: pulumi.Output<string>;
  /** Everything that must exist before the replicator writes. */
  public readonly ready: pulumi.Resource[] = [];

  constructor(name: string, args: BackupBucketArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("railhead:index:BackupBucket", name, {}, opts);
    const onAws = !args.endpoint;
    this.region = args.region;
    this.endpoint = args.endpoint;
    this.forcePathStyle = args.forcePathStyle ?? !onAws;
    if (!onAws && !args.credentials) throw new Error(`${name}: an S3-compatible endpoint needs credentials from config`);

    // Only a created bucket or an IAM user needs a provider; an existing bucket with given keys does not.
    const needsProvider = args.createBucket || !args.credentials;
    const provider = !needsProvider
      ? undefined
      : onAws
        ? new aws.Provider(`${name}/provider`, { region: args.region as aws.Region }, { parent: this })
        : new aws.Provider(
            `${name}/provider`,
            {
              region: args.region as aws.Region,
              endpoints: [{ s3: args.endpoint }],
              s3UsePathStyle: this.forcePathStyle,
              skipCredentialsValidation: true,
              skipRequestingAccountId: true,
              skipMetadataApiCheck: true,
              skipRegionValidation: true,
              accessKey: args.credentials?.accessKeyId,
              secretKey: args.credentials?.secretAccessKey,
            },
            { parent: this },
          );
    const child = { parent: this, provider };
    const data = { ...child, protect: args.protect, retainOnDelete: true };

    if (args.createBucket) {
      const bucket = new aws.s3.Bucket(`${name}/bucket`, { bucket: args.bucket, forceDestroy: false }, data);
      this.bucketName = bucket.bucket;
      const versioning = new aws.s3.BucketVersioning(`${name}/versioning`, { bucket: bucket.id, versioningConfiguration: { status: "Enabled" } }, data);
      const lifecycle = new aws.s3.BucketLifecycleConfiguration(
        `${name}/lifecycle`,
        {
          bucket: bucket.id,
          rules: [
            {
              id: "railhead-backups",
              status: "Enabled",
              filter: { prefix: `${args.prefix}/` },
              noncurrentVersionExpiration: { noncurrentDays: args.noncurrentDays ?? 30 },
              abortIncompleteMultipartUpload: { daysAfterInitiation: 1 },
            },
          ],
        },
        { ...data, dependsOn: [versioning] },
      );
      this.ready.push(bucket, versioning, lifecycle);
      if (onAws) {
        const sse = new aws.s3.BucketServerSideEncryptionConfiguration(
          `${name}/encryption`,
          { bucket: bucket.id, rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" }, bucketKeyEnabled: true }] },
          data,
        );
        const pab = new aws.s3.BucketPublicAccessBlock(
          `${name}/public-access-block`,
          { bucket: bucket.id, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true },
          data,
        );
        this.ready.push(sse, pab);
      }
    } else {
      this.bucketName = pulumi.output(args.bucket);
    }

    if (args.credentials) {
      this.accessKeyId = pulumi.secret(pulumi.output(args.credentials.accessKeyId));
      this.secretAccessKey = pulumi.secret(pulumi.output(args.credentials.secretAccessKey));
    } else {
      // AWS without given keys: a user that reaches only this stack's prefix.
      const user = new aws.iam.User(`${name}/user`, { name: `${args.bucket}-${args.prefix.replace(/[^A-Za-z0-9]+/g, "-")}`.slice(0, 64), path: "/railhead/" }, child);
      const policy = new aws.iam.UserPolicy(`${name}/policy`, { user: user.name, policy: JSON.stringify(prefixPolicy(args.bucket, args.prefix)) }, child);
      const key = new aws.iam.AccessKey(`${name}/key`, { user: user.name }, { ...child, additionalSecretOutputs: ["secret"] });
      this.accessKeyId = pulumi.secret(key.id);
      this.secretAccessKey = pulumi.secret(key.secret);
      this.ready.push(policy, key);
    }
    this.registerOutputs({ bucketName: this.bucketName, accessKeyId: this.accessKeyId, secretAccessKey: this.secretAccessKey });
  }
}
