// Types for the one function of cluster-key-slot used here (the package ships none): a key's Redis
// Cluster slot (0-16383), honouring a `{hash tag}` as Redis does.
declare module 'cluster-key-slot' {
  export default function calculateSlot(key: string | Buffer): number;
}
