/**
 * The one adapter between protobuf-es (messages only) and grpc-js (transport): it turns a
 * generated service descriptor into a grpc-js ServiceDefinition, so both sides share the
 * schema and nobody hand-writes a serializer.
 */
import { type DescMessage, type DescService, fromBinary, type MessageShape, toBinary } from '@bufbuild/protobuf';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';

export function grpcServiceDefinition(service: DescService): ServiceDefinition {
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming',
      responseStream: method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming',
      requestSerialize: serializer(method.input),
      requestDeserialize: deserializer(method.input),
      responseSerialize: serializer(method.output),
      responseDeserialize: deserializer(method.output),
    };
  }
  return definition as ServiceDefinition;
}

function serializer<D extends DescMessage>(desc: D) {
  return (message: unknown): Buffer => {
    const bytes = toBinary(desc, message as MessageShape<D>);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer<D extends DescMessage>(desc: D) {
  return (bytes: Buffer): MessageShape<D> => fromBinary(desc, bytes);
}
