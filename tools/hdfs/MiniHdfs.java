// A real HDFS in one JVM for hybridflow's hdfs:// tests: Hadoop's MiniDFSCluster (one NameNode, one
// DataNode) with WebHDFS on, bound to 127.0.0.1. Compiled by tools/hdfs/provision.sh; started by
// hybridflow.testing.services.HdfsCluster:
//   java -cp 'classes:lib/*' MiniHdfs NAMENODE_RPC_PORT NAMENODE_HTTP_PORT BASE_DIR
// Prints "MiniHdfs ready" once the cluster is active, then serves until the process is terminated.
import java.io.File;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hdfs.MiniDFSCluster;

public class MiniHdfs {
  public static void main(String[] args) throws Exception {
    int rpcPort = Integer.parseInt(args[0]);
    int httpPort = Integer.parseInt(args[1]);
    File base = new File(args[2]);
    Configuration conf = new Configuration();
    conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, base.getAbsolutePath());
    conf.setBoolean("dfs.webhdfs.enabled", true);
    conf.setBoolean("dfs.permissions.enabled", false);
    conf.set("dfs.namenode.http-address", "127.0.0.1:" + httpPort);
    conf.set("dfs.datanode.address", "127.0.0.1:0");
    conf.set("dfs.datanode.http.address", "127.0.0.1:0");
    conf.set("dfs.datanode.ipc.address", "127.0.0.1:0");
    conf.set("dfs.datanode.hostname", "127.0.0.1");
    conf.setBoolean("dfs.datanode.use.datanode.hostname", true);
    conf.setBoolean("dfs.client.use.datanode.hostname", true);
    MiniDFSCluster cluster = new MiniDFSCluster.Builder(conf)
        .nameNodePort(rpcPort)
        .nameNodeHttpPort(httpPort)
        .numDataNodes(1)
        .format(true)
        .build();
    cluster.waitActive();
    Runtime.getRuntime().addShutdownHook(new Thread(cluster::shutdown));
    System.out.println("MiniHdfs ready");
    System.out.flush();
    Thread.currentThread().join();
  }
}
