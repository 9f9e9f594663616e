// protobuf-es helpers, so other packages build frames without their own copy of the runtime.
export { create, fromBinary, type MessageInitShape, toBinary } from '@bufbuild/protobuf';
export * from './config/index.js';
export * from './errors.js';
export * from './gen/ward/tunnel/v1/tunnel_pb.js';
export { grpcServiceDefinition } from './grpc-service.js';
export * from './http/headers.js';
export * from './tunnel/index.js';
