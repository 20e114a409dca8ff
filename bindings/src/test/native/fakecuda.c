// fakecuda.c: a host-memory stand-in for libcuda, libcublas, libcublasLt and libnccl, exporting every
// symbol dev.rlsr.bindings binds. It checks the FFM wiring (descriptor types, argument order, struct by
// value, out-parameters) of the *GpuTest classes on a machine without a GPU; it proves nothing about CUDA.
// "Device" memory is malloc'ed host memory, the only kernel is axpy_kernel, GEMMs run on the CPU.
//
//   gcc -O1 -shared -fPIC -o /tmp/libfakecuda.so bindings/src/test/native/fakecuda.c -lm
//   F=/tmp/libfakecuda.so; ./mvnw -pl bindings test -Dtest='*GpuTest' -Drlsr.lib.cuda=$F -Drlsr.lib.cublas=$F \
//       -Drlsr.lib.cublaslt=$F -Drlsr.lib.nccl=$F        (plus -Drlsr.lib.nvrtc=... for the kernel tests)
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
typedef int R;
static float bf(uint16_t b){uint32_t u=((uint32_t)b)<<16; float f; memcpy(&f,&u,4); return f;}
static uint16_t tobf(float f){uint32_t u; memcpy(&u,&f,4); u+=0x7fff+((u>>16)&1); return (uint16_t)(u>>16);}
static float ld(const void*p,int t,long i){return t==14?bf(((const uint16_t*)p)[i]):((const float*)p)[i];}
static void st(void*p,int t,long i,float v){if(t==14)((uint16_t*)p)[i]=tobf(v);else ((float*)p)[i]=v;}
// ---- driver
R cuInit(unsigned f){return 0;}
R cuDriverGetVersion(int*v){*v=13000;return 0;}
R cuDeviceGetCount(int*c){*c=1;return 0;}
R cuDeviceGet(int*d,int o){if(o!=0)return 101;*d=0;return 0;}
R cuDeviceGetName(char*n,int len,int d){strncpy(n,"Fake GPU",len);return 0;}
R cuDeviceGetAttribute(int*pi,int a,int d){switch(a){case 75:*pi=9;break;case 76:*pi=0;break;case 10:*pi=32;break;case 16:*pi=132;break;default:*pi=1;}return 0;}
R cuDeviceTotalMem_v2(size_t*b,int d){*b=80ul<<30;return 0;}
R cuMemGetInfo_v2(size_t*f,size_t*t){*f=70ul<<30;*t=80ul<<30;return 0;}
static void* CTX=(void*)0x1234;static void* cur=0;
R cuDevicePrimaryCtxRetain(void**c,int d){*c=CTX;return 0;}
R cuDevicePrimaryCtxRelease_v2(int d){return 0;}
R cuCtxSetCurrent(void*c){cur=c;return 0;}
R cuCtxGetCurrent(void**c){*c=cur;return 0;}
R cuCtxSynchronize(void){return 0;}
R cuGetErrorName(int e,const char**s){if(e==2){*s="CUDA_ERROR_OUT_OF_MEMORY";return 0;} if(e==500){*s="CUDA_ERROR_NOT_FOUND";return 0;} *s=0;return 1;}
R cuGetErrorString(int e,const char**s){if(e==2){*s="out of memory";return 0;} if(e==500){*s="named symbol not found";return 0;} *s=0;return 1;}
R cuMemAlloc_v2(unsigned long long*p,size_t n){if(n>(1ul<<40))return 2;*p=(unsigned long long)malloc(n);return 0;}
R cuMemFree_v2(unsigned long long p){free((void*)p);return 0;}
R cuMemAllocHost_v2(void**p,size_t n){*p=malloc(n);return 0;}
R cuMemFreeHost(void*p){free(p);return 0;}
R cuMemcpyHtoD_v2(unsigned long long d,const void*s,size_t n){memcpy((void*)d,s,n);return 0;}
R cuMemcpyDtoH_v2(void*d,unsigned long long s,size_t n){memcpy(d,(void*)s,n);return 0;}
R cuMemcpyDtoD_v2(unsigned long long d,unsigned long long s,size_t n){memcpy((void*)d,(void*)s,n);return 0;}
R cuMemcpyHtoDAsync_v2(unsigned long long d,const void*s,size_t n,void*st){return cuMemcpyHtoD_v2(d,s,n);}
R cuMemcpyDtoHAsync_v2(void*d,unsigned long long s,size_t n,void*st){return cuMemcpyDtoH_v2(d,s,n);}
R cuMemcpyDtoDAsync_v2(unsigned long long d,unsigned long long s,size_t n,void*st){return cuMemcpyDtoD_v2(d,s,n);}
R cuMemsetD8_v2(unsigned long long d,unsigned char c,size_t n){memset((void*)d,c,n);return 0;}
R cuMemsetD8Async(unsigned long long d,unsigned char c,size_t n,void*s){return cuMemsetD8_v2(d,c,n);}
R cuMemsetD32_v2(unsigned long long d,unsigned int v,size_t n){unsigned*p=(unsigned*)d;for(size_t i=0;i<n;i++)p[i]=v;return 0;}
R cuMemsetD32Async(unsigned long long d,unsigned int v,size_t n,void*s){return cuMemsetD32_v2(d,v,n);}
R cuStreamCreate(void**s,unsigned f){*s=malloc(8);return 0;}
R cuStreamDestroy_v2(void*s){free(s);return 0;}
R cuStreamSynchronize(void*s){return 0;}
R cuStreamWaitEvent(void*s,void*e,unsigned f){return 0;}
R cuEventCreate(void**e,unsigned f){*e=malloc(8);return 0;}
R cuEventRecord(void*e,void*s){return 0;}
R cuEventSynchronize(void*e){return 0;}
R cuEventElapsedTime_v2(float*ms,void*a,void*b){*ms=0.5f;return 0;}
R cuEventDestroy_v2(void*e){free(e);return 0;}
R cuModuleLoadData(void**m,const void*img){if(memcmp(img,"\177ELF",4))return 218;*m=malloc(8);return 0;}
R cuModuleUnload(void*m){free(m);return 0;}
static int AXPY;
R cuModuleGetFunction(void**f,void*m,const char*n){if(strcmp(n,"axpy_kernel"))return 500;*f=&AXPY;return 0;}
R cuFuncSetAttribute(void*f,int a,int v){return f==&AXPY?0:1;}
R cuFuncGetAttribute(int*pi,int a,void*f){*pi=8;return 0;}
static int capturing; static struct {float*y;const float*x;float a;int n;int threads;} rec;
static void axpy(float*y,const float*x,float a,int n,int threads){for(int i=0;i<n&&i<threads;i++)y[i]=fmaf(a,x[i],y[i]);}
R cuLaunchKernel(void*f,unsigned gx,unsigned gy,unsigned gz,unsigned bx,unsigned by,unsigned bz,unsigned sh,void*s,void**p,void**extra){
  if(f!=&AXPY||extra)return 1;
  float*y=*(float**)p[0];const float*x=*(const float**)p[1];float a=*(float*)p[2];int n=*(int*)p[3];
  if(capturing){rec.y=y;rec.x=x;rec.a=a;rec.n=n;rec.threads=gx*bx;return 0;}
  axpy(y,x,a,n,gx*bx);return 0;}
R cuStreamBeginCapture_v2(void*s,int mode){if(mode<0||mode>2)return 1;capturing=1;return 0;}
R cuStreamEndCapture(void*s,void**g){capturing=0;*g=malloc(8);return 0;}
R cuGraphInstantiateWithFlags(void**e,void*g,unsigned long long fl){if(fl)return 1;*e=malloc(8);return 0;}
R cuGraphLaunch(void*e,void*s){axpy(rec.y,rec.x,rec.a,rec.n,rec.threads);return 0;}
R cuGraphDestroy(void*g){free(g);return 0;}
R cuGraphExecDestroy(void*e){free(e);return 0;}
// ---- cuBLAS
static const char* sname(int s){switch(s){case 0:return "CUBLAS_STATUS_SUCCESS";case 7:return "CUBLAS_STATUS_INVALID_VALUE";default:return 0;}}
const char* cublasGetStatusName(int s){return sname(s);}
const char* cublasGetStatusString(int s){return s==7?"an invalid numeric value was used as an argument":0;}
R cublasCreate_v2(void**h){*h=malloc(64);return 0;}
R cublasDestroy_v2(void*h){free(h);return 0;}
R cublasGetVersion_v2(void*h,int*v){*v=130001;return 0;}
R cublasSetStream_v2(void*h,void*s){return 0;}
R cublasSetWorkspace_v2(void*h,void*w,size_t n){return 0;}
R cublasSetMathMode(void*h,int m){return 0;}
static int gemm(int ta,int tb,int m,int n,int k,float al,const void*A,int at,int lda,const void*B,int bt,int ldb,float be,void*C,int ct,int ldc){
  if(ta>1||tb>1)return 7;
  for(int j=0;j<n;j++)for(int i=0;i<m;i++){double acc=0;for(int p=0;p<k;p++){
    double a=ta?ld(A,at,p+(long)i*lda):ld(A,at,i+(long)p*lda);double b=tb?ld(B,bt,j+(long)p*ldb):ld(B,bt,p+(long)j*ldb);acc+=a*b;}
    float old=be==0?0:ld(C,ct,i+(long)j*ldc); st(C,ct,i+(long)j*ldc,(float)(al*acc+be*old));}
  return 0;}
R cublasSgemm_v2(void*h,int ta,int tb,int m,int n,int k,const float*al,const float*A,int lda,const float*B,int ldb,const float*be,float*C,int ldc){
  return gemm(ta,tb,m,n,k,*al,A,0,lda,B,0,ldb,*be,C,0,ldc);}
R cublasGemmEx(void*h,int ta,int tb,int m,int n,int k,const void*al,const void*A,int at,int lda,const void*B,int bt,int ldb,const void*be,void*C,int ct,int ldc,int comp,int algo){
  if(comp!=68||algo!=-1)return 7;return gemm(ta,tb,m,n,k,*(float*)al,A,at,lda,B,bt,ldb,*(float*)be,C,ct,ldc);}
R cublasGemmStridedBatchedEx(void*h,int ta,int tb,int m,int n,int k,const void*al,const void*A,int at,int lda,long long sa,const void*B,int bt,int ldb,long long sb,const void*be,void*C,int ct,int ldc,long long sc,int batch,int comp,int algo){
  if(comp!=68||algo!=-1)return 7;
  for(int i=0;i<batch;i++){int r=gemm(ta,tb,m,n,k,*(float*)al,(const char*)A+sa*i*(at==14?2:4),at,lda,(const char*)B+sb*i*(bt==14?2:4),bt,ldb,*(float*)be,(char*)C+sc*i*(ct==14?2:4),ct,ldc);if(r)return r;}
  return 0;}
// ---- cuBLASLt
typedef struct{int comp,scale,ta,tb;}Desc; typedef struct{int type;uint64_t rows,cols;int64_t ld;}Lay; typedef struct{uint64_t ws;}Pref;
const char* cublasLtGetStatusName(int s){return sname(s);}
const char* cublasLtGetStatusString(int s){return 0;}
size_t cublasLtGetVersion(void){return 130001;}
R cublasLtCreate(void**h){*h=malloc(8);return 0;}
R cublasLtDestroy(void*h){free(h);return 0;}
R cublasLtMatmulDescCreate(Desc**d,int comp,int scale){*d=calloc(1,sizeof(Desc));(*d)->comp=comp;(*d)->scale=scale;return 0;}
R cublasLtMatmulDescDestroy(Desc*d){free(d);return 0;}
R cublasLtMatmulDescSetAttribute(Desc*d,int a,const void*buf,size_t n){if(n!=4)return 7;if(a==3)d->ta=*(int*)buf;else if(a==4)d->tb=*(int*)buf;else return 7;return 0;}
R cublasLtMatrixLayoutCreate(Lay**l,int t,uint64_t r,uint64_t c,int64_t ld){*l=malloc(sizeof(Lay));(*l)->type=t;(*l)->rows=r;(*l)->cols=c;(*l)->ld=ld;return 0;}
R cublasLtMatrixLayoutDestroy(Lay*l){free(l);return 0;}
R cublasLtMatmulPreferenceCreate(Pref**p){*p=calloc(1,sizeof(Pref));return 0;}
R cublasLtMatmulPreferenceDestroy(Pref*p){free(p);return 0;}
R cublasLtMatmulPreferenceSetAttribute(Pref*p,int a,const void*buf,size_t n){if(a!=1||n!=8)return 7;p->ws=*(uint64_t*)buf;return 0;}
typedef struct{uint64_t algo[8];size_t ws;int state;float waves;int res[4];}Heur;
R cublasLtMatmulAlgoGetHeuristic(void*h,Desc*d,Lay*a,Lay*b,Lay*c,Lay*dd,Pref*p,int req,Heur*out,int*ret){
  if(req<1||c!=dd)return 7; memset(out,0,sizeof(Heur)); out->algo[0]=0xA160; out->ws=p->ws/2; *ret=1; return 0;}
R cublasLtMatmul(void*h,Desc*d,const void*al,const void*A,Lay*la,const void*B,Lay*lb,const void*be,const void*C,Lay*lc,void*D,Lay*ldd,const uint64_t*algo,void*ws,size_t wsn,void*s){
  if(!algo||algo[0]!=0xA160||d->comp!=68||d->scale!=0||C!=D)return 7;
  int m=lc->rows,n=lc->cols,k=d->ta?la->rows:la->cols;
  if((d->ta?la->cols:la->rows)!=m||(d->tb?lb->rows:lb->cols)!=n||(d->tb?lb->cols:lb->rows)!=k)return 7;
  return gemm(d->ta,d->tb,m,n,k,*(float*)al,A,la->type,la->ld,B,lb->type,lb->ld,*(float*)be,D,lc->type,lc->ld);}
// ---- NCCL
typedef struct{char internal[128];}Uid;
const char* ncclGetErrorString(int r){return r==4?"invalid argument":"unknown";}
R ncclGetVersion(int*v){*v=22703;return 0;}
R ncclGetUniqueId(Uid*u){for(int i=0;i<128;i++)u->internal[i]=(char)(i*7+3);return 0;}
R ncclCommInitRank(void**c,int n,Uid id,int rank){for(int i=0;i<128;i++)if(id.internal[i]!=(char)(i*7+3))return 4;if(n!=1||rank!=0)return 4;*c=malloc(8);return 0;}
R ncclCommInitAll(void**c,int nd,const int*dev){for(int i=0;i<nd;i++){if(dev[i]!=0)return 4;c[i]=malloc(8);}return 0;}
R ncclCommDestroy(void*c){free(c);return 0;}
static size_t esz(int t){return t==9||t==6?2:(t==4||t==5||t==8)?8:(t<=1?1:4);}
R ncclAllReduce(const void*s,void*r,size_t n,int t,int op,void*c,void*st){if(!c||op>4)return 4;if(s!=r)memmove(r,s,n*esz(t));return 0;}
R ncclBroadcast(const void*s,void*r,size_t n,int t,int root,void*c,void*st){if(!c||root!=0)return 4;if(s!=r)memmove(r,s,n*esz(t));return 0;}
R ncclGroupStart(void){return 0;}
R ncclGroupEnd(void){return 0;}
